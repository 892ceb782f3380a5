"""policyengine adapter for openlineage (see adapters/README.md)."""
