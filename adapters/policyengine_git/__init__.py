"""policyengine adapter for git (see adapters/README.md)."""
