"""`policyengine ingest` and adapter discovery: adapter → events → decisions, lineage, log."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pseudonyms import pseudonym_key_file

from policyengine.adapter import AdapterError, Located, available_adapters, get_adapter
from policyengine.cli.main import cli
from policyengine.lineage import SQLiteLineageStore, trace

ROOT = Path(__file__).resolve().parent.parent
POLICIES = str(ROOT / "policies")
EVENTS = str(ROOT / "examples" / "biotech.jsonl")
BAD = str(ROOT / "examples" / "bad-input.jsonl")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_builtin_events_adapter_locates_records() -> None:
    items = list(get_adapter("events").events(BAD))
    located = [i for i in items if isinstance(i, Located)]
    errors = [i for i in items if isinstance(i, AdapterError)]
    assert located[0].location == f"{BAD}:1"
    assert {e.location for e in errors} == {f"{BAD}:2", f"{BAD}:11"}


def test_ingest_decides_records_lineage_and_logs(tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    run("keys", "generate", "--out", str(key), "--name", "example.com/ingest")
    store, log = tmp_path / "lineage.db", tmp_path / "decisions.db"
    pkey = str(pseudonym_key_file(tmp_path))
    result = run(
        "ingest", "--adapter", "events", EVENTS, "--policies", POLICIES,
        "--store", str(store), "--log", str(log), "--key", str(key), "--format", "json",
        "--pseudonym-key", pkey,
    )  # fmt: skip
    assert result.exit_code == 1  # the scenario has denials
    assert "59 events: 32 allow, 3 allow_with_warnings, 3 review_required, 21 deny" in (
        result.stderr
    )
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == 59
    with SQLiteLineageStore(store) as lineage:
        up = trace(lineage, "model_version:mv-hepatox-1.1.0", "upstream")
        kinds = {n.key.kind for n in up.nodes}
        assert {"dataset", "training_run", "code_commit", "approval"} <= kinds
    assert run("log", "verify", "--log", str(log)).exit_code == 0
    # ingesting the same source again adds no lineage and decides the same way
    again = run(
        "ingest", "-a", "events", EVENTS, "-p", POLICIES, "--store", str(store),
        "--format", "json", "--pseudonym-key", pkey,
    )  # fmt: skip
    assert again.stdout == result.stdout


def _logged_ingest(source: Path | str, log: Path, key: Path, pkey: Path) -> Result:
    return run(
        "ingest", "-a", "events", str(source), "-p", POLICIES, "--log", str(log),
        "--key", str(key), "--format", "json", "--pseudonym-key", str(pkey),
    )  # fmt: skip


@pytest.fixture()
def log_key(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "log.key"
    run("keys", "generate", "--out", str(key), "--name", "example.com/ingest")
    return key, pseudonym_key_file(tmp_path)


def test_ingest_into_a_log_continues_its_state(tmp_path: Path, log_key: tuple[Path, Path]) -> None:
    """Two ingests of two halves of a stream into one log decide the second half exactly as
    one ingest of the whole stream does; alone, the second half is judged differently (its
    models, runs and approvals are unknown), so the comparison can fail."""
    key, pkey = log_key
    lines = Path(EVENTS).read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:30]))
    second.write_text("".join(lines[30:]))
    whole = _logged_ingest(EVENTS, tmp_path / "whole.db", key, pkey)
    split = tmp_path / "split.db"
    a = _logged_ingest(first, split, key, pkey)
    b = _logged_ingest(second, split, key, pkey)
    assert len(whole.stdout.splitlines()) == 59
    assert a.stdout + b.stdout == whole.stdout
    alone = _logged_ingest(second, tmp_path / "alone.db", key, pkey)
    assert alone.stdout != b.stdout
    # The log is one session: replay reproduces every decision of both runs.
    replay = run("audit", "replay", "--log", str(split))
    assert replay.exit_code == 0, replay.output
    assert "59 decisions replayed: 59 reproduced, 0 differ" in replay.stdout
    assert "1 session" in replay.stdout


def test_reingesting_decides_nothing_new(tmp_path: Path, log_key: tuple[Path, Path]) -> None:
    key, pkey = log_key
    log = tmp_path / "decisions.db"
    _logged_ingest(EVENTS, log, key, pkey)
    size = len(run("log", "show", "--log", str(log)).stdout)
    again = _logged_ingest(EVENTS, log, key, pkey)
    assert again.exit_code == 0 and again.stdout == ""
    assert "0 events: 0 allow" in again.stderr
    assert f"59 events already decided in `{log}` were skipped" in again.stderr
    assert len(run("log", "show", "--log", str(log)).stdout) == size
    assert run("audit", "replay", "--log", str(log)).exit_code == 0


def test_a_reused_event_id_is_refused_and_a_repeat_in_one_source_skipped(
    tmp_path: Path, log_key: tuple[Path, Path]
) -> None:
    key, pkey = log_key
    log = tmp_path / "decisions.db"
    lines = Path(EVENTS).read_text().splitlines()
    first = json.loads(lines[0])
    source = tmp_path / "events.jsonl"
    source.write_text(f"{lines[0]}\n{lines[1]}\n{lines[0]}\n")
    once = _logged_ingest(source, log, key, pkey)
    assert len(once.stdout.splitlines()) == 2
    assert f"1 event already decided in `{log}` was skipped" in once.stderr
    changed = dict(first, time="2026-06-01T00:00:00Z")
    source.write_text(json.dumps(changed) + "\n")
    reused = _logged_ingest(source, log, key, pkey)
    assert reused.exit_code == 2 and reused.stdout == ""
    assert f"event `{first['id']}` was already decided for a different event" in reused.stderr
    assert "(log leaf" in reused.stderr


def test_ingest_reports_bad_records_and_decides_the_rest() -> None:
    result = run("ingest", "-a", "events", BAD, "-p", POLICIES)
    assert result.exit_code == 2
    assert f"error: {BAD}:2: invalid JSON" in result.stderr
    assert f"error: {BAD}:3 (`bad-003`): unknown event type `model.retired`" in result.stderr
    assert "3 events: 3 allow" in result.stdout  # the text report ends with its summary
    assert f"8 records of `{BAD}` could not be ingested" in result.stderr


def test_unknown_adapter_lists_the_installed_ones() -> None:
    result = run("ingest", "-a", "nope", EVENTS, "-p", POLICIES)
    assert result.exit_code == 2
    assert "unknown adapter `nope`" in result.stderr and "`events`" in result.stderr


def test_missing_source_is_a_usage_error() -> None:
    result = run("ingest", "-a", "events", "no-such.jsonl", "-p", POLICIES)
    assert result.exit_code == 2 and "no such file `no-such.jsonl`" in result.stderr


PLUGIN = """
from dataclasses import dataclass

@dataclass(frozen=True)
class TsvAdapter:
    name: str = "tsv"
    summary: str = "dataset registrations as tab-separated id, classification"

    def events(self, source):
        from policyengine.adapter import AdapterError
        for n, line in enumerate(open(source), start=1):
            parts = line.rstrip("\\n").split("\\t")
            if len(parts) != 2:
                yield AdapterError("expected 2 columns", location=f"{source}:{n}")
                continue
            yield {
                "id": f"tsv-{n}", "type": "dataset.registered", "time": "2026-01-01T00:00:00Z",
                "actor": {"id": "catalog"}, "subject": {"kind": "dataset", "id": parts[0]},
                "attributes": {"name": parts[0], "classification": parts[1]},
            }
"""


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed distribution (dist-info with an entry point) on sys.path."""
    site = tmp_path / "site"
    dist = site / "tsvplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tsvplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[policyengine.adapters]\ntsv = tsvplug:TsvAdapter\nbroken = tsvplug_missing:X\n"
    )
    (site / "tsvplug.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "tsvplug", raising=False)
    return tmp_path


def test_adapters_are_discovered_through_entry_points(plugin: Path) -> None:
    assert {"events", "tsv", "broken"} <= set(available_adapters())
    listing = run("adapters").stdout
    assert "tsv            dataset registrations" in listing
    assert "broken" in listing and "unavailable" in listing
    source = plugin / "catalog.tsv"
    source.write_text("ds-a\tPHI\nds-b\tpublic\nnot-enough-columns\n")
    result = run("ingest", "-a", "tsv", str(source), "-p", POLICIES, "--format", "json")
    assert result.exit_code == 2
    assert f"{source}:3: expected 2 columns" in result.stderr
    outcomes = [json.loads(line)["outcome"] for line in result.stdout.splitlines()]
    assert len(outcomes) == 2
    broken = run("ingest", "-a", "broken", str(source), "-p", POLICIES)
    assert broken.exit_code == 2 and "adapter `broken`" in broken.stderr
    assert "failed to load" in broken.stderr
