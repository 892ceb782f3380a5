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
        assert {"dataset", "training_run", "commit", "approval"} <= kinds
    assert run("log", "verify", "--log", str(log)).exit_code == 0
    # ingesting the same source again adds no lineage and decides the same way
    again = run(
        "ingest", "-a", "events", EVENTS, "-p", POLICIES, "--store", str(store),
        "--format", "json", "--pseudonym-key", pkey,
    )  # fmt: skip
    assert again.stdout == result.stdout


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
