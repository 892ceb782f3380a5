"""End to end through the CLI: keys, `eval --log --key`, and every `log` subcommand.

Runs in-process with click's CliRunner against real SQLite files in a tmp dir; a tampered
log is made the way an attacker would, with plain sqlite3 after dropping the triggers.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pseudonyms import pseudonym_key_file

from policyengine.cli.main import cli
from policyengine.log import (
    TlogProof,
    Verifier,
    leaf_hash,
    load_signer,
    parse_record,
    verify_checkpoint,
    verify_consistency,
    verify_proof,
)

ROOT = Path(__file__).resolve().parent.parent
POLICIES = str(ROOT / "policies")
EVENTS = str(ROOT / "examples" / "biotech.jsonl")
N_EVENTS = 59


KEY = str(pseudonym_key_file(Path(tempfile.mkdtemp(prefix="pseudonym-"))))


def run(*args: str, input: str | None = None, pseudonyms: bool = True) -> Result:
    """The CLI; commands that store events get the test pseudonymisation key (the example
    events carry patient identifiers) unless `pseudonyms=False`."""
    stores = (args[:1] == ("eval",) and "--log" in args) or args[:2] == ("log", "append")
    if stores and pseudonyms:
        args = (*args, "--pseudonym-key", KEY)
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_identifiers_never_reach_the_log(tmp_path: Path, key: tuple[Path, str]) -> None:
    raw = {
        p
        for line in Path(EVENTS).read_text().splitlines()
        for p in json.loads(line)["attributes"].get("patient_ids", [])
    }
    assert len(raw) >= 10
    db = tmp_path / "p.db"
    result = run("eval", "-p", POLICIES, "-e", EVENTS, "--log", str(db), "--key", str(key[0]),
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 1
    out = tmp_path / "export"
    assert run("log", "export", str(out), "--log", str(db)).exit_code == 0
    stored = [db.read_bytes(), result.stdout.encode()]
    stored += [f.read_bytes() for f in out.rglob("*") if f.is_file()]
    for blob in stored:
        assert not any(r.encode() in blob for r in raw)
    assert b"pseud:" in db.read_bytes()
    # without a key, events with identifiers are refused and nothing of them is logged
    refused = run("eval", "-p", POLICIES, "-e", EVENTS, "--log", str(tmp_path / "q.db"),
                  "--key", str(key[0]), pseudonyms=False)  # fmt: skip
    assert refused.exit_code == 2
    assert "carries patient identifiers" in refused.stderr
    assert not any(r.encode() in (tmp_path / "q.db").read_bytes() for r in raw)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("keys") / "log.key"
    result = run("keys", "generate", "--out", str(path), "--name", "example.com/gxp-log")
    assert result.exit_code == 0, result.output
    return path, result.stdout.strip()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, key: tuple[Path, str]) -> Path:
    db = tmp_path_factory.mktemp("log") / "decisions.db"
    result = run(
        "eval", "--policies", POLICIES, "--events", EVENTS, "--format", "json",
        "--log", str(db), "--key", str(key[0]),
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # the scenario has denials by design
    assert f"logged to `{db}`: {N_EVENTS + 2} leaves" in result.stderr
    return db


def test_keys_generate_writes_private_key_0600_and_prints_verifier(
    key: tuple[Path, str],
) -> None:
    path, verifier_key = key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    verifier = Verifier.from_key_string(verifier_key)
    assert verifier.name == "example.com/gxp-log"
    assert load_signer(path).verifier_key == verifier_key
    assert run("keys", "show", "--key", str(path)).stdout.strip() == verifier_key


def test_keys_generate_refuses_to_overwrite(key: tuple[Path, str]) -> None:
    before = key[0].read_bytes()
    result = run("keys", "generate", "--out", str(key[0]))
    assert result.exit_code == 2
    assert "already exists; refusing to overwrite" in result.stderr
    assert key[0].read_bytes() == before


def test_keys_generate_rejects_bad_name(tmp_path: Path) -> None:
    result = run("keys", "generate", "--out", str(tmp_path / "k"), "--name", "bad name")
    assert result.exit_code == 2
    assert "invalid key name `bad name`" in result.stderr
    assert not (tmp_path / "k").exists()


def test_world_readable_key_is_refused(tmp_path: Path, key: tuple[Path, str]) -> None:
    copy = tmp_path / "copy.key"
    copy.write_bytes(key[0].read_bytes())
    os.chmod(copy, 0o644)
    result = run("keys", "show", "--key", str(copy))
    assert result.exit_code == 2
    assert "accessible by other users" in result.stderr and "chmod 600" in result.stderr


def test_eval_logs_a_bundle_then_every_decision_in_order(logged: Path) -> None:
    result = run("log", "show", "--log", str(logged), "--format", "json")
    assert result.exit_code == 0
    records = [parse_record(line.encode()) for line in result.stdout.splitlines()]
    assert [r["kind"] for r in records] == ["bundle", "session"] + ["decision"] * N_EVENTS
    assert records[1]["state"] == "empty"
    events = [json.loads(line)["id"] for line in Path(EVENTS).read_text().splitlines()]
    assert [r["event"]["id"] for r in records[2:]] == events
    assert all(r["decision"]["bundle_digest"] == records[0]["digest"] for r in records[2:])
    # leaf time is the engine's evaluation time
    assert all(r["time"] == r["decision"]["evaluated_at"] for r in records[2:])


def test_log_show_text_is_readable(logged: Path) -> None:
    result = run("log", "show", "--log", str(logged), "--from", "1", "--to", "2")
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] == "1" and "session" in lines[0] and "empty state" in lines[0]
    assert lines[1].split()[0] == "2" and "evt-001" in lines[1] and "deny" in lines[1]


def test_same_events_and_key_give_byte_identical_logs(
    tmp_path: Path, logged: Path, key: tuple[Path, str]
) -> None:
    db = tmp_path / "again.db"
    run("eval", "-p", POLICIES, "-e", EVENTS, "--log", str(db), "--key", str(key[0]))
    a = run("log", "checkpoint", "--log", str(logged)).stdout
    b = run("log", "checkpoint", "--log", str(db)).stdout
    assert a == b and a.startswith("example.com/gxp-log\n61\n")


def test_checkpoint_is_a_signed_c2sp_note(logged: Path, key: tuple[Path, str]) -> None:
    note = run("log", "checkpoint", "--log", str(logged)).stdout
    cp = verify_checkpoint(note, Verifier.from_key_string(key[1]), "example.com/gxp-log")
    assert cp.size == N_EVENTS + 2


def test_prove_gives_a_tlog_proof_that_verifies_offline(
    tmp_path: Path, logged: Path, key: tuple[Path, str]
) -> None:
    result = run("log", "prove", "8", "--log", str(logged), "-o", str(tmp_path / "p.tlog-proof"))
    assert result.exit_code == 0
    text = (tmp_path / "p.tlog-proof").read_text()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    proof = TlogProof.parse(text)
    assert proof.to_text() == text
    _cp, leaf = verify_proof(proof, Verifier.from_key_string(key[1]))
    assert parse_record(leaf)["event"]["id"] == "evt-007"
    ok = run("log", "verify-proof", str(tmp_path / "p.tlog-proof"), "--verifier-key", key[1])
    assert ok.exit_code == 0 and "ok: leaf 8" in ok.stdout
    # a record that is not the logged one does not verify against the proof
    other = tmp_path / "other.json"
    other.write_bytes(leaf.replace(b"evt-007", b"evt-008"))
    bad = run(
        "log", "verify-proof", str(tmp_path / "p.tlog-proof"),
        "--verifier-key", key[1], "--leaf", str(other),
    )  # fmt: skip
    assert bad.exit_code == 1 and "differs from the leaf data" in bad.stderr


def test_prove_by_event_id(logged: Path, key: tuple[Path, str]) -> None:
    by_event = run("log", "prove", "--event", "evt-007", "--log", str(logged)).stdout
    assert by_event == run("log", "prove", "8", "--log", str(logged)).stdout
    missing = run("log", "prove", "--event", "evt-nope", "--log", str(logged))
    assert missing.exit_code == 2 and "no decision on event `evt-nope`" in missing.stderr
    both = run("log", "prove", "8", "--event", "evt-007", "--log", str(logged))
    assert both.exit_code == 2 and "either a leaf INDEX or --event ID" in both.stderr


def test_tampered_proof_is_rejected(tmp_path: Path, logged: Path, key: tuple[Path, str]) -> None:
    text = run("log", "prove", "3", "--log", str(logged)).stdout
    lines = text.split("\n")
    lines[2] = "index 4"
    (tmp_path / "p").write_text("\n".join(lines))
    result = run("log", "verify-proof", str(tmp_path / "p"), "--verifier-key", key[1])
    assert result.exit_code == 1 and "proof does not verify" in result.stderr


def test_prove_out_of_range_is_a_usage_error(logged: Path) -> None:
    result = run("log", "prove", "61", "--log", str(logged))
    assert result.exit_code == 2
    assert "leaf 61 is not covered by the checkpoint at size 61" in result.stderr


def test_consistency_proof_verifies(tmp_path: Path, logged: Path) -> None:
    result = run("log", "consistency", "13", "61", "--log", str(logged), "--format", "json")
    doc = json.loads(result.stdout)
    verify_consistency(
        13,
        61,
        [base64.b64decode(h) for h in doc["proof"]],
        base64.b64decode(doc["old_root"]),
        base64.b64decode(doc["new_root"]),
    )
    text = run("log", "consistency", "13", "61", "--log", str(logged)).stdout.split()
    assert text == doc["proof"]
    assert run("log", "consistency", "0", "61", "--log", str(logged)).exit_code == 2
    assert run("log", "consistency", "20", "62", "--log", str(logged)).exit_code == 2


def _tampered_copy(src: Path, dst: Path, index: int) -> None:
    dst.write_bytes(src.read_bytes())
    db = sqlite3.connect(dst)
    db.execute("DROP TRIGGER leaves_no_update")
    data = db.execute("SELECT data FROM leaves WHERE idx=?", (index,)).fetchone()[0]
    assert b'"deny"' in data
    db.execute("UPDATE leaves SET data=? WHERE idx=?", (data.replace(b'"deny"', b'"allow"'), index))
    db.commit()
    db.close()


def test_verify_ok_then_names_the_first_tampered_leaf(
    tmp_path: Path, logged: Path, key: tuple[Path, str]
) -> None:
    ok = run("log", "verify", "--log", str(logged), "--verifier-key", key[1])
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: 61 leaves, 1 checkpoint")
    bad = tmp_path / "bad.db"
    _tampered_copy(logged, bad, 2)
    result = run("log", "verify", "--log", str(bad), "--verifier-key", key[1])
    assert result.exit_code == 1
    assert "FAILED: first bad leaf is 2" in result.stdout
    doc = json.loads(
        run("log", "verify", "--log", str(bad), "--verifier-key", key[1], "--format", "json").stdout
    )
    assert doc["ok"] is False and doc["first_bad_leaf"] == 2


def test_verify_with_another_key_fails(tmp_path: Path, logged: Path) -> None:
    other = tmp_path / "other.key"
    vkey = run("keys", "generate", "--out", str(other), "--name", "example.com/gxp-log").stdout
    result = run("log", "verify", "--log", str(logged), "--verifier-key", vkey.strip())
    assert result.exit_code == 1


def test_verify_without_key_warns_it_trusts_the_log(logged: Path) -> None:
    result = run("log", "verify", "--log", str(logged))
    assert result.exit_code == 0
    assert "trusting the verifier key stored in the log itself" in result.stderr


def test_export_and_verify_export(tmp_path: Path, logged: Path, key: tuple[Path, str]) -> None:
    out = tmp_path / "export"
    assert run("log", "export", str(out), "--log", str(logged)).exit_code == 0
    lines = (out / "leaves.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == N_EVENTS + 3
    db = sqlite3.connect(logged)
    stored = [bytes(r[0]) for r in db.execute("SELECT data FROM leaves ORDER BY idx")]
    assert lines[:-1] == stored
    assert (out / "verifier.key").read_text().strip() == key[1]
    assert (out / "checkpoints" / "61").is_file() and (out / "checkpoint").is_file()
    ok = run("log", "verify-export", str(out), "--verifier-key", key[1])
    assert ok.exit_code == 0, ok.output
    # with the key as a file too
    kfile = tmp_path / "vkey"
    kfile.write_text(key[1] + "\n")
    assert run("log", "verify-export", str(out), "--verifier-key", str(kfile)).exit_code == 0
    # refuse to export over a non-empty folder
    again = run("log", "export", str(out), "--log", str(logged))
    assert again.exit_code == 2 and "not an empty directory" in again.stderr


def test_verify_export_detects_edits_truncation_and_extra_lines(
    tmp_path: Path, logged: Path, key: tuple[Path, str]
) -> None:
    out = tmp_path / "export"
    run("log", "export", str(out), "--log", str(logged))
    leaves = out / "leaves.jsonl"
    original = leaves.read_bytes()
    leaves.write_bytes(original.replace(b'"deny"', b'"allow"', 1))
    edited = run("log", "verify-export", str(out), "--verifier-key", key[1])
    assert edited.exit_code == 1 and "do not reproduce the signed root" in edited.stderr
    lines = original.split(b"\n")
    leaves.write_bytes(b"\n".join(lines[:-3]) + b"\n")
    cut = run("log", "verify-export", str(out), "--verifier-key", key[1])
    assert cut.exit_code == 1 and "are missing" in cut.stderr
    leaves.write_bytes(original + b'{"v":1}\n')
    extra = run("log", "verify-export", str(out), "--verifier-key", key[1], "--format", "json")
    assert extra.exit_code == 1 and json.loads(extra.stdout)["first_bad_leaf"] == 61


def test_log_append_events_and_decisions(
    tmp_path: Path, key: tuple[Path, str], logged: Path
) -> None:
    db = tmp_path / "append.db"
    decisions = run("eval", "-p", POLICIES, "-e", EVENTS, "--format", "json").stdout
    (tmp_path / "d.jsonl").write_text(decisions)
    result = run("log", "append", "--log", str(db), "--key", str(key[0]), str(tmp_path / "d.jsonl"))
    assert result.exit_code == 0, result.output
    assert "appended 59 (leaves 0..58); checkpoint at size 59" in result.stderr
    result = run(
        "log", "append", "--log", str(db), "--key", str(key[0]),
        "--now", "2026-02-01T00:00:00Z", EVENTS,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = run("log", "show", "--log", str(db), "--format", "json").stdout.splitlines()
    kinds = [parse_record(s.encode())["kind"] for s in shown]
    assert kinds == ["decision"] * 59 + ["event"] * 59
    assert json.loads(shown[59])["time"] == "2026-02-01T00:00:00Z"
    assert run("log", "verify", "--log", str(db), "--verifier-key", key[1]).exit_code == 0


def test_log_append_is_all_or_nothing(tmp_path: Path, key: tuple[Path, str]) -> None:
    db = tmp_path / "append.db"
    good = Path(EVENTS).read_text().splitlines()[0]
    (tmp_path / "bad.jsonl").write_text(good + "\n{not json\n" + '{"type": "nope"}\n')
    result = run(
        "log", "append", "--log", str(db), "--key", str(key[0]), str(tmp_path / "bad.jsonl")
    )
    assert result.exit_code == 2
    assert "bad.jsonl:2: invalid JSON" in result.stderr
    assert "bad.jsonl:3:" in result.stderr and "unknown event type `nope`" in result.stderr
    assert "nothing appended: 2 bad lines" in result.stderr
    assert not db.exists()


def test_checkpoint_with_key_signs_a_newer_tree(tmp_path: Path, key: tuple[Path, str]) -> None:
    db = tmp_path / "c.db"
    (tmp_path / "e.jsonl").write_text(Path(EVENTS).read_text().splitlines()[0] + "\n")
    run("log", "append", "--log", str(db), "--key", str(key[0]), str(tmp_path / "e.jsonl"))
    run("log", "append", "--log", str(db), "--key", str(key[0]), str(tmp_path / "e.jsonl"))
    note = run("log", "checkpoint", "--log", str(db), "--key", str(key[0])).stdout
    assert note.split("\n")[1] == "2"


def test_wrong_key_for_existing_log_is_refused(tmp_path: Path, logged: Path) -> None:
    other = tmp_path / "other.key"
    run("keys", "generate", "--out", str(other), "--name", "example.com/other")
    before = logged.read_bytes()
    result = run("eval", "-p", POLICIES, "-e", EVENTS, "--log", str(logged), "--key", str(other))
    assert result.exit_code == 2
    assert "is not the key of the log" in result.stderr
    assert logged.read_bytes() == before


def test_log_and_key_go_together(tmp_path: Path) -> None:
    result = run("eval", "-p", POLICIES, "-e", EVENTS, "--log", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "--log and --key go together" in result.stderr


@pytest.mark.parametrize("what", ["missing", "directory", "garbage", "other-sqlite"])
def test_unusable_log_paths_are_clear_errors(tmp_path: Path, what: str) -> None:
    path = tmp_path / "thing"
    if what == "directory":
        path.mkdir()
    elif what == "garbage":
        path.write_bytes(b"not a database at all" * 100)
    elif what == "other-sqlite":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE t(x)")
        db.commit()
        db.close()
    before = path.read_bytes() if path.is_file() else None
    result = run("log", "show", "--log", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    if before is not None:
        assert path.read_bytes() == before


def test_leaf_hashes_match_rfc6962(logged: Path) -> None:
    db = sqlite3.connect(logged)
    for h, data in db.execute("SELECT hash, data FROM leaves"):
        assert bytes(h) == leaf_hash(bytes(data))
