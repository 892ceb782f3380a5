"""The `policyengine` command-line interface (entry point: `policyengine.cli.main:main`)."""
