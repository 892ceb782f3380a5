"""policyengine — declarative policy-as-code for ML governance in GxP settings.

The public surface is deliberately small: compile a bundle once, then decide
events with it, in-process or through an `Engine` that keeps entity state.
"""

from __future__ import annotations

__version__ = "0.1.0"

from policyengine.compiler.bundle import Bundle, RuleInfo, compile_sources, load_bundle
from policyengine.events import EventError, MemoryStateStore, StateStore, parse_event, read_jsonl
from policyengine.language.diagnostics import CompileError, Diagnostic
from policyengine.log import (
    DecisionRecorder,
    LogError,
    Signer,
    TransparencyLog,
    VerificationError,
    Verifier,
)
from policyengine.runtime.clock import Clock, event_time, fixed, wall_clock
from policyengine.runtime.decision import Decision, Outcome, RequirementResult, RuleResult
from policyengine.runtime.engine import Engine

__all__ = [
    "Bundle",
    "Clock",
    "CompileError",
    "Decision",
    "DecisionRecorder",
    "Diagnostic",
    "Engine",
    "EventError",
    "LogError",
    "MemoryStateStore",
    "Outcome",
    "RequirementResult",
    "RuleInfo",
    "RuleResult",
    "Signer",
    "StateStore",
    "TransparencyLog",
    "VerificationError",
    "Verifier",
    "__version__",
    "compile_sources",
    "event_time",
    "fixed",
    "load_bundle",
    "parse_event",
    "read_jsonl",
    "wall_clock",
]
