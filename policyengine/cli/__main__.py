"""`python -m policyengine.cli` — the same as the `policyengine` console script."""

from policyengine.cli.main import main

main()
