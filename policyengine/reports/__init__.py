"""Report renderers shared by the CLI and (later) the HTTP server.

Every function here is pure — data in, `str`/`bytes`/`dict` out — and never
touches the terminal or the environment, so output depends only on arguments.
"""

from __future__ import annotations

from policyengine.reports._common import OutcomeTally, failure_reason
from policyengine.reports.decisions import decision_json_line, decisions_junit, decisions_text
from policyengine.reports.diagnostics import BundleStats, check_json, check_text, diagnostics_text
from policyengine.reports.explain import explain_json, explain_text, rule_info_dict
from policyengine.reports.policy_tests import (
    coverage_text,
    policy_tests_json,
    policy_tests_junit,
    policy_tests_text,
)
from policyengine.reports.sarif import (
    CODE_DESCRIPTIONS,
    SARIF_SCHEMA_URI,
    SARIF_VERSION,
    decisions_sarif,
    diagnostics_sarif,
)

__all__ = [
    "CODE_DESCRIPTIONS",
    "SARIF_SCHEMA_URI",
    "SARIF_VERSION",
    "BundleStats",
    "OutcomeTally",
    "check_json",
    "check_text",
    "coverage_text",
    "decision_json_line",
    "decisions_junit",
    "decisions_sarif",
    "decisions_text",
    "diagnostics_sarif",
    "diagnostics_text",
    "explain_json",
    "explain_text",
    "failure_reason",
    "policy_tests_json",
    "policy_tests_junit",
    "policy_tests_text",
    "rule_info_dict",
]
