"""policyengine adapter for mlflow (see adapters/README.md)."""
