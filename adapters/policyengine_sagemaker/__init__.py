"""policyengine adapter for sagemaker (see adapters/README.md)."""
