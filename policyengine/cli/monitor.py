"""`policyengine drift --policies …`: run monitor policies and act on their breaches.

Kept apart from `cli/drift.py` (the ad-hoc comparison) because this path touches the whole
engine: it compiles the policies, turns every check into a `drift.evaluated` event, decides
those events with the same bundle (so "critical drift needs QA review" is a rule, not a
script), optionally logs the decisions, and fires the monitor's breach actions.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Sink,
    load_policies,
    parse_timestamp,
    settings,
)
from policyengine.drift import DriftError, report_html
from policyengine.drift.monitor import MonitorRun, drift_events, run_monitor, select_monitors
from policyengine.events import EventError, parse_event
from policyengine.log import DecisionRecorder, TransparencyLog, load_signer
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import Engine

__all__ = ["run_monitors"]

TRIGGER_TIMEOUT_S = 120
WEBHOOK_TIMEOUT_S = 10


def _parse_triggers(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, command = value.partition("=")
        if not sep or not name.strip() or not command.strip():
            raise CliError(
                f"`--on-trigger {value}` is not NAME=COMMAND",
                "e.g. --on-trigger 'retrain=./pipelines/retrain.sh --model tox'",
            )
        try:
            out[name.strip()] = shlex.split(command)
        except ValueError as exc:
            raise CliError(f"`--on-trigger {value}`: {exc}") from None
    return out


def _parse_now(value: str | None) -> datetime:
    return datetime.now(UTC) if value is None else parse_timestamp(value, "--now")


def _text(runs: list[MonitorRun], decisions: list[Decision]) -> str:
    lines: list[str] = []
    for run in runs:
        state = "BREACH" if run.breached else "ok"
        lines.append(
            f"monitor {run.monitor.id} ({run.monitor.title or run.monitor.name}): {state}"
            f" — baseline {run.baseline or '?'}, window {run.window},"
            f" {run.reference_rows} reference / {run.current_rows} current rows"
        )
        width = max((len(c.feature) for c in run.checks), default=7)
        lines.append(f"  {'feature':<{width}}  {'condition':<26} {'value':>12}  verdict")
        for c in run.checks:
            value = "—" if c.value is None else f"{c.value:.6g}"
            verdict = "drift" if c.breached else "ok"
            note = f"  ({c.note})" if c.note else ""
            lines.append(
                f"  {c.feature:<{width}}  {c.condition!s:<26} {value:>12}  {verdict}{note}"
            )
        for key, action in run.actions().items():
            lines.append(f"  on breach → {key}: {json.dumps(action, sort_keys=True)}")
        lines.append("")
    if decisions:
        blocking = [d for d in decisions if d.outcome.blocking]
        lines.append(
            f"{len(decisions)} drift events decided: {len(blocking)} need attention"
            + "".join(f"\n  {d.event_id}: {d.outcome.value}" for d in blocking[:10])
        )
    return "\n".join(lines) + "\n"


def _fire(run: MonitorRun, triggers: dict[str, list[str]], webhook: str | None) -> list[str]:
    """Run the breach actions; returns problems (a failed action never hides the drift)."""
    problems: list[str] = []
    payload = json.dumps(run.to_dict(), sort_keys=True).encode("utf-8")
    for name in run.monitor.triggers:
        command = triggers.get(name)
        if command is None:
            problems.append(
                f"monitor `{run.monitor.id}` asks for trigger `{name}` but no"
                f" `--on-trigger {name}=COMMAND` was given"
            )
            continue
        try:
            done = subprocess.run(
                command,
                input=payload,
                capture_output=True,
                timeout=TRIGGER_TIMEOUT_S,
                check=False,
                env=None,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"trigger `{name}` could not run `{command[0]}`: {exc}")
            continue
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            problems.append(
                f"trigger `{name}` exited {done.returncode}" + (f": {err[-1]}" if err else "")
            )
        else:
            settings().note(f"trigger `{name}` ran `{shlex.join(command)}`")
    if webhook is not None:
        request = urllib.request.Request(
            webhook, data=payload, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                settings().note(f"webhook {webhook} answered {response.status}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"webhook {webhook} failed: {exc}")
    return problems


def run_monitors(
    *,
    reference: str,
    current: str,
    fmt: str,
    output: str | None,
    threads: int | None,
    policies: tuple[str, ...],
    monitor: str | None,
    model: str | None,
    model_version: str | None,
    emit_events: str | None,
    log_path: str | None,
    key_path: str | None,
    on_trigger: tuple[str, ...],
    webhook: str | None,
    now: str | None,
) -> None:
    s = settings()
    if (log_path is None) != (key_path is None):
        raise CliError("--log and --key go together")
    if (emit_events is not None or log_path is not None) and model_version is None:
        raise CliError(
            "drift events need --model-version",
            "the events are about the model version that scored the current window",
        )
    triggers = _parse_triggers(on_trigger)
    at = _parse_now(now)
    bundle = load_policies(policies)
    try:
        chosen = select_monitors(bundle.monitors, monitor=monitor, model=model)
        if fmt == "html" and len(chosen) > 1:
            raise DriftError(
                "an HTML report shows one monitor", "pick one with --monitor or --model"
            )
        runs = [
            run_monitor(
                spec,
                reference,
                current,
                model_version=model_version,
                threads=threads,
                plots=fmt == "html",
            )
            for spec in chosen
        ]
        events = (
            [e for run in runs for e in drift_events(run, time=at)]
            if model_version is not None
            else []
        )
    except DriftError as err:
        raise CliError(err.message, err.hint) from None
    decisions: list[Decision] = []
    if log_path is not None and key_path is not None:
        with TransparencyLog.open(log_path, load_signer(key_path), create=True) as log:
            engine = Engine(bundle, recorder=DecisionRecorder(log))
            try:
                decisions = engine.evaluate_batch(events)
            except EventError as err:  # a bug in the event builder, never user input
                raise CliError(f"internal: a drift event does not validate: {err}") from None
    elif events:
        engine = Engine(bundle)
        decisions = [engine.evaluate(parse_event(e), validated=True) for e in events]
    if emit_events is not None:
        with Sink(None if emit_events == "-" else emit_events, False) as sink:
            for e in events:
                sink.write_text(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n")
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            doc: dict[str, Any] = {
                "format": "policyengine.monitor/1",
                "breached": any(r.breached for r in runs),
                "monitors": [r.to_dict() for r in runs],
                "decisions": [json.loads(d.to_json()) for d in decisions],
            }
            sink.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        elif fmt == "html":
            sink.write_text(report_html(runs[0].report))
        elif emit_events != "-":
            sink.write_text(_text(runs, decisions))
    problems = [p for run in runs if run.breached for p in _fire(run, triggers, webhook)]
    for problem in problems:
        s.warn(problem)
    breached = any(r.breached for r in runs)
    if log_path is not None:
        s.note(f"logged {len(decisions)} drift decisions to `{log_path}`")
    click.get_current_context().exit(EXIT_FINDINGS if breached else EXIT_OK)
