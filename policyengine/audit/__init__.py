"""Reproducibility over the decision log: replay logged decisions, and measure the impact
of a proposed policy bundle on the events already logged."""

from policyengine.audit._common import NOT_TRIGGERED, NotReplayable, RuleChange
from policyengine.audit.diff import (
    DiffReport,
    Example,
    TransitionGroup,
    diff,
    diff_headline,
    diff_json,
    diff_markdown,
    diff_text,
)
from policyengine.audit.replay import (
    Difference,
    ReplayReport,
    replay,
    replay_json,
    replay_summary,
    replay_text,
)

__all__ = [
    "NOT_TRIGGERED",
    "DiffReport",
    "Difference",
    "Example",
    "NotReplayable",
    "ReplayReport",
    "RuleChange",
    "TransitionGroup",
    "diff",
    "diff_headline",
    "diff_json",
    "diff_markdown",
    "diff_text",
    "replay",
    "replay_json",
    "replay_summary",
    "replay_text",
]
