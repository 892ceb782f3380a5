"""`policyengine lineage …`: record events into the lineage store and ask it questions.

`record` fills the store (idempotently: re-running it on the same file adds nothing);
`trace` walks upstream or downstream of one node, `served` says which model version served
an endpoint at an instant and under which approvals, and `affected` lists everything a
dataset fed. Unknown or ambiguous ids are usage errors (exit 2) with suggestions or the
candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from policyengine.cli._common import EXIT_USAGE, CliError, EventStream, Sink, no_color_option
from policyengine.cli._common import settings as cli_settings
from policyengine.events import EventError
from policyengine.events.pseudonym import load_pseudonym_key, require_pseudonymised
from policyengine.lineage import (
    FORMATS,
    Affected,
    LineageError,
    Node,
    RecordResult,
    Serving,
    SQLiteLineageStore,
    affected_by,
    describe,
    render,
    served_at,
    trace,
)
from policyengine.lineage._time import show_time
from policyengine.lineage.render import dumps, edge_dict, node_dict

__all__ = ["lineage_group"]

BATCH = 10_000

STORE_OPTION = click.option(
    "--store",
    "store_path",
    required=True,
    metavar="DB",
    envvar="POLICYENGINE_LINEAGE",
    help="The lineage store (SQLite file; may be the decision log's). Env: POLICYENGINE_LINEAGE.",
)
OUTPUT_OPTION = click.option(
    "--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout."
)


F = TypeVar("F", bound=Callable[..., Any])


def _at_option(help: str) -> Callable[[F], F]:
    return click.option("--at", "at", metavar="TIME", help=help)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@contextmanager
def _lineage_errors() -> Iterator[None]:
    try:
        yield
    except LineageError as exc:
        raise CliError(exc.message, exc.hint) from None


def _open(path: str, *, create: bool = False) -> SQLiteLineageStore:
    with _lineage_errors():
        return SQLiteLineageStore(path, create=create)


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    if value.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"`--at` must be an RFC 3339 timestamp, got `{value}`",
            "e.g. `--at 2026-03-01T12:00:00Z` (or `now`)",
        ) from None
    if t.tzinfo is None:
        raise CliError(f"`--at {value}` has no timezone", "add `Z` or an offset such as `+00:00`")
    return t.astimezone(UTC)


@click.group("lineage")
def lineage_group() -> None:
    """The lineage graph: what each model was made from, and what each dataset fed.

    \b
    Exit codes: 0 ok · 2 usage or input error (unknown store, unknown or ambiguous id,
    bad event lines).
    """


# ---------------------------------------------------------------- record


@lineage_group.command("record")
@STORE_OPTION
@click.argument("events", metavar="EVENTS.jsonl")
@click.option(
    "--pseudonym-key",
    "pseudonym_key",
    metavar="FILE",
    help="Pseudonymise patient identifiers before recording (required when events carry "
    "them; `policyengine keys pseudonym` makes one).",
)
@no_color_option
def record_cmd(store_path: str, events: str, pseudonym_key: str | None) -> None:
    """Record the lineage of every event in a JSON Lines file (`-` for stdin).

    Creates the store if needed. Events already recorded are skipped, so re-running on a
    growing file only adds the new ones. Bad lines are reported as FILE:LINE and skipped;
    every other line is recorded.
    """
    s = cli_settings()
    source = Path(events)
    if events != "-" and not source.is_file():  # before the store file is created
        what = "a directory" if source.is_dir() else "missing"
        raise CliError(f"events file `{events}` is {what}", "pass a JSON Lines file")
    try:
        pseudonyms = load_pseudonym_key(pseudonym_key) if pseudonym_key is not None else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stream = EventStream(events)
    total = RecordResult()
    with _open(store_path, create=True) as store:
        batch: list[tuple[int, dict[str, Any]]] = []

        def flush() -> None:
            with _lineage_errors():
                result = store.record_many((e for _, e in batch), on_conflict="skip")
            for position, event_id in zip(result.conflict_positions, result.conflicts, strict=True):
                stream.reject(
                    batch[position][0],
                    EventError(
                        f"event `{event_id}` was already recorded with different content; "
                        "event ids must be unique"
                    ),
                )
            total.__iadd__(result)
            batch.clear()

        for line, event in stream.events():
            try:
                event = require_pseudonymised(event, pseudonyms)
            except EventError as err:
                stream.reject(line, err)
                continue
            batch.append((line, event))
            if len(batch) >= BATCH:
                flush()
        flush()
        counts = store.counts()
    s.note(
        f"recorded {_plural(total.recorded, 'event')} into `{store_path}` "
        f"({_plural(total.nodes_added, 'node')} and {_plural(total.edges_added, 'edge')} added;"
        f" {total.duplicates} already recorded); the store holds "
        f"{_plural(counts['nodes'], 'node')} and {_plural(counts['edges'], 'edge')}"
    )
    if stream.bad_lines:
        s.error(
            f"{_plural(stream.bad_lines, 'line')} of `{stream.label}` could not be recorded",
            "see the messages above; every other line was recorded",
        )
        click.get_current_context().exit(EXIT_USAGE)


# ---------------------------------------------------------------- trace


@lineage_group.command("trace")
@click.argument("node_id", metavar="ID")
@STORE_OPTION
@click.option(
    "--upstream/--downstream",
    "upstream",
    default=True,
    help="Walk to what ID was made from (default) or to what it fed.",
)
@_at_option("Only the graph as it stood at TIME (RFC 3339): edges recorded by then, "
            "deployments in force then.")  # fmt: skip
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text (indented tree), json, dot (Graphviz) or mermaid (flowchart).",
)
@OUTPUT_OPTION
@no_color_option
def trace_cmd(
    node_id: str, store_path: str, upstream: bool, at: str | None, fmt: str, output: str | None
) -> None:
    """Trace ID upstream (sources, code, images, approvals) or downstream (models,
    endpoints, prediction batches).

    ID is an entity id (`mv-1`), `kind:id` (`model_version:mv-1`), a name, or `name@version`.
    """
    when = _parse_at(at)
    with _open(store_path) as store, _lineage_errors():
        result = trace(store, node_id, "upstream" if upstream else "downstream", when)
    with Sink(output, False) as sink:
        sink.write_text(render(result, fmt))


# ---------------------------------------------------------------- served


def _serving_text(endpoint: str, at: datetime, serving: Serving | None) -> str:
    if serving is None:
        return f"nothing was deployed to `{endpoint}` at {show_time(at)}\n"
    d = serving.deployment
    until = f" until {show_time(d.valid_to)}" if d.valid_to is not None else " (still in force)"
    mv = serving.model_version
    out = [
        f"{serving.endpoint.key} at {show_time(at)} was served by {mv.key}  {describe(mv)}",
        f"  deployed: {d.event_id} at {show_time(d.time)}{until}",
        f"  approvals recorded by then ({len(serving.approvals)}):",
    ]
    for a in serving.approvals:
        out.append(f"    {a.attrs.get('time', '?')}  {describe(a)}  [{a.id}]")
    out.append(f"  overrides in force ({len(serving.overrides)}):")
    for o in serving.overrides:
        out.append(f"    {o.attrs.get('time', '?')}  {describe(o)}  [{o.id}]")
    return "\n".join(out) + "\n"


def _serving_json(endpoint: str, at: datetime, serving: Serving | None) -> str:
    return dumps(
        {
            "endpoint": str(serving.endpoint.key) if serving else f"endpoint:{endpoint}",
            "at": show_time(at),
            "model_version": node_dict(serving.model_version) if serving else None,
            "deployment": edge_dict(serving.deployment) if serving else None,
            "approvals": [node_dict(a) for a in serving.approvals] if serving else [],
            "overrides": [node_dict(o) for o in serving.overrides] if serving else [],
        }
    )


@lineage_group.command("served")
@click.argument("endpoint", metavar="ENDPOINT")
@STORE_OPTION
@_at_option("The instant (RFC 3339). Default: now.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@OUTPUT_OPTION
@no_color_option
def served_cmd(
    endpoint: str, store_path: str, at: str | None, fmt: str, output: str | None
) -> None:
    """Which model version served ENDPOINT at --at, and under which approvals and overrides."""
    when = _parse_at(at) or datetime.now(UTC)
    name = endpoint.removeprefix("endpoint:")
    with _open(store_path) as store, _lineage_errors():
        serving = served_at(store, name, when)
    text = (_serving_json if fmt == "json" else _serving_text)(name, when, serving)
    with Sink(output, False) as sink:
        sink.write_text(text)


# ---------------------------------------------------------------- affected


def _line(node: Node) -> str:
    label = describe(node)
    return f"{node.key}  {label}" if label else str(node.key)


def _affected_text(a: Affected) -> str:
    at = f" at {show_time(a.trace.at)}" if a.trace.at is not None else ""
    out = [f"downstream of {_line(a.source)}{at}"]
    groups: list[tuple[str, tuple[Node, ...]]] = [
        ("derived datasets", a.datasets),
        ("feature sets", a.feature_sets),
        ("training runs", a.training_runs),
        ("model versions", a.model_versions),
        ("endpoints", a.endpoints),
    ]
    for title, nodes in groups:
        out.append(f"{title} ({len(nodes)}):")
        out += [f"  {_line(n)}" for n in nodes]
    out.append(f"deployments ({len(a.deployments)}):")
    for d in a.deployments:
        until = f"until {show_time(d.valid_to)}" if d.valid_to is not None else "in force"
        out.append(f"  {d.src} -> {d.dst}  {d.event_id} {show_time(d.time)} ({until})")
    out.append(f"prediction batches ({len(a.prediction_batches)}):")
    out += [f"  {_line(n)}" for n in a.prediction_batches]
    return "\n".join(out) + "\n"


def _affected_json(a: Affected) -> str:
    return dumps(
        {
            "source": node_dict(a.source),
            "at": show_time(a.trace.at) if a.trace.at is not None else None,
            "datasets": [node_dict(n) for n in a.datasets],
            "feature_sets": [node_dict(n) for n in a.feature_sets],
            "training_runs": [node_dict(n) for n in a.training_runs],
            "model_versions": [node_dict(n) for n in a.model_versions],
            "endpoints": [node_dict(n) for n in a.endpoints],
            "deployments": [edge_dict(e) for e in a.deployments],
            "prediction_batches": [node_dict(n) for n in a.prediction_batches],
        }
    )


@lineage_group.command("affected")
@click.argument("dataset", metavar="DATASET")
@STORE_OPTION
@_at_option("Only the graph as it stood at TIME (RFC 3339).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@OUTPUT_OPTION
@no_color_option
def affected_cmd(
    dataset: str, store_path: str, at: str | None, fmt: str, output: str | None
) -> None:
    """Everything DATASET fed: derived datasets, feature sets, runs, model versions, their
    deployments and endpoints, and prediction batches ("this data was unconsented — what is
    affected?")."""
    when = _parse_at(at)
    with _open(store_path) as store, _lineage_errors():
        result = affected_by(store, dataset, when)
    with Sink(output, False) as sink:
        sink.write_text((_affected_json if fmt == "json" else _affected_text)(result))
