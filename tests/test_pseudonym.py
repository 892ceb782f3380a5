"""Keyed pseudonyms for patient identifiers: deterministic, keyed, idempotent, fail closed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from policyengine.events import EventError, parse_event
from policyengine.events.pseudonym import (
    PSEUDONYM,
    Pseudonymiser,
    carries_identifiers,
    generate_pseudonym_key,
    load_pseudonym_key,
    require_pseudonymised,
    sensitive_fields,
)
from policyengine.lineage import LineageError, SQLiteLineageStore
from policyengine.log import generate_key_file

ROOT = Path(__file__).resolve().parent.parent
EVENT = parse_event(
    {
        "id": "b-1", "type": "prediction.batch_completed", "time": "2026-03-01T00:00:00Z",
        "actor": {"id": "svc"}, "subject": {"kind": "prediction_batch", "id": "pb-1"},
        "attributes": {"model_version": "mv-1", "patient_ids": ["MRN-1234567", "PT-2026-00001"]},
    }
)  # fmt: skip


def test_the_schema_marks_the_sensitive_fields() -> None:
    assert sensitive_fields("prediction.batch_completed") == (("patient_ids", "list", "patient"),)
    assert sensitive_fields("dataset.accessed") == (("patient_ids", "list", "patient"),)
    assert sensitive_fields("model.deployed") == ()


def test_pseudonyms_are_keyed_deterministic_and_idempotent() -> None:
    a, b = Pseudonymiser(b"a" * 32), Pseudonymiser(b"b" * 32)
    once = a.apply(EVENT)
    ids = once["attributes"]["patient_ids"]
    assert all(PSEUDONYM.fullmatch(p) for p in ids) and len(set(ids)) == 2
    assert a.apply(EVENT) == once  # same key, same pseudonyms: lineage still joins
    assert a.apply(once) == once  # applying twice changes nothing
    assert b.apply(EVENT)["attributes"]["patient_ids"] != ids  # another key, other pseudonyms
    assert EVENT["attributes"]["patient_ids"] == ["MRN-1234567", "PT-2026-00001"]  # a copy
    assert not carries_identifiers(once) and carries_identifiers(EVENT)
    assert "MRN" not in repr(a) and "aaaa" not in repr(a)


def test_stores_refuse_raw_identifiers() -> None:
    with pytest.raises(EventError, match="carries patient identifiers"):
        require_pseudonymised(EVENT, None)
    with SQLiteLineageStore(":memory:") as store, pytest.raises(LineageError):
        store.record(EVENT)


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "p.key"
    generate_pseudonym_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate_pseudonym_key(path)
    one = load_pseudonym_key(path).apply(EVENT)
    assert one == load_pseudonym_key(path).apply(EVENT)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="accessible by other users"):
        load_pseudonym_key(path)
    signing = tmp_path / "log.key"
    generate_key_file(signing)
    with pytest.raises(ValueError, match="is a log signing key; pseudonyms need their own key"):
        load_pseudonym_key(signing)
    (tmp_path / "junk").write_text("hello")
    os.chmod(tmp_path / "junk", 0o600)
    with pytest.raises(ValueError, match="not a policyengine pseudonymisation key"):
        load_pseudonym_key(tmp_path / "junk")


def test_the_example_stream_carries_identifiers() -> None:
    lines = (ROOT / "examples" / "biotech.jsonl").read_text().splitlines()
    carrying = [json.loads(line) for line in lines if "patient_ids" in line]
    assert {e["type"] for e in carrying} == {"dataset.accessed", "prediction.batch_completed"}
