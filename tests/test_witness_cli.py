"""End to end through the CLI: a log, an independent witness, and an inspector with a quorum.

`eval --log` → `log checkpoint` → `witness cosign` → `log cosign` → `log prove` →
`log verify-proof --witness-key … --quorum N`, then export and `verify-export` with witnesses,
and the witness refusing what it must refuse. Real SQLite files and key files in a tmp dir.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyengine.cli.main import cli
from policyengine.cli.witness import witness_group
from policyengine.log.cosignature import CosignatureVerifier

# The lead registers the group in main.py; until then (or if it moves) make sure it is there.
if "witness" not in cli.commands:
    cli.add_command(witness_group)

POLICY = """\
package witness.test

rule dataset_has_owner {
  title "Datasets declare an owner"
  layer audit
  severity high
  enforce hard
  on dataset.registered
  require has(subject.owner) else "no owner is declared"
  message "dataset `{subject}` has no owner"
}
"""


def _event(n: int, owner: bool = True) -> str:
    attributes: dict[str, object] = {
        "name": f"assay-{n}",
        "version": "1",
        "uri": f"s3://example-bucket/assays/{n}/",
        "digest": "sha256:" + f"{n:064x}",
        "classification": "internal",
        "allowed_purposes": ["assay-qc"],
        "region": "eu-west-1",
        "row_count": 100 + n,
    }
    if owner:
        attributes["owner"] = "steward@example.org"
    return json.dumps(
        {
            "id": f"evt-{n:03d}",
            "type": "dataset.registered",
            "time": f"2026-01-12T09:{n:02d}:00Z",
            "actor": {"id": "steward@example.org", "name": "A Steward", "roles": ["data_steward"]},
            "subject": {"kind": "dataset", "id": f"ds-{n}"},
            "attributes": attributes,
        }
    )


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "policies").mkdir()
        (root / "policies" / "owner.policy").write_text(POLICY)
        self.db = root / "decisions.db"
        self.log_key = root / "log.key"
        self.w_key = root / "w1.key"
        self.state = root / "w1.state.json"
        self.log_vkey = self.w_vkey = self.w2_vkey = ""

    def path(self, name: str) -> str:
        return str(self.root / name)

    def eval(self, first: int, count: int) -> None:
        events = self.root / f"events-{first}.jsonl"
        events.write_text(
            "".join(_event(n, n % 3 != 0) + "\n" for n in range(first, first + count))
        )
        result = run(
            "eval", "--policies", self.path("policies"), "--events", str(events),
            "--format", "json", "--log", str(self.db), "--key", str(self.log_key),
        )  # fmt: skip
        assert result.exit_code in (0, 1), result.output

    def checkpoint(self, name: str) -> Path:
        result = run("log", "checkpoint", "--log", str(self.db))
        assert result.exit_code == 0, result.output
        out = self.root / name
        out.write_text(result.stdout)
        return out

    def cosign(self, checkpoint: Path, *extra: str) -> Result:
        return run(
            "witness", "cosign", "--key", str(self.w_key), "--log-key", self.log_vkey,
            "--state", str(self.state), str(checkpoint), *extra,
        )  # fmt: skip


@pytest.fixture()
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    result = run("keys", "generate", "--out", str(w.log_key), "--name", "example.com/gxp-log")
    assert result.exit_code == 0, result.output
    w.log_vkey = result.stdout.strip()
    result = run("witness", "keys", "generate", "--out", str(w.w_key), "--name", "qa.example/w1")
    assert result.exit_code == 0, result.output
    w.w_vkey = result.stdout.strip()
    result = run(
        "witness", "keys", "generate", "--out", w.path("w2.key"), "--name", "qa.example/w2"
    )
    w.w2_vkey = result.stdout.strip()
    return w


def test_witness_keys_generate(world: World) -> None:
    verifier = CosignatureVerifier.from_key_string(world.w_vkey)
    assert verifier.name == "qa.example/w1"
    assert stat.S_IMODE(world.w_key.stat().st_mode) == 0o600
    assert world.w_key.read_text().startswith("PRIVATE+KEY+qa.example/w1+")
    assert run("witness", "keys", "show", "--key", str(world.w_key)).stdout.strip() == world.w_vkey
    before = world.w_key.read_bytes()
    result = run("witness", "keys", "generate", "--out", str(world.w_key), "--name", "x.example/w")
    assert result.exit_code == 2 and "refusing to overwrite" in result.stderr
    assert world.w_key.read_bytes() == before
    result = run("witness", "keys", "generate", "--out", world.path("bad.key"), "--name", "a b")
    assert result.exit_code == 2 and "invalid witness name `a b`" in result.stderr


def test_cosign_attach_prove_and_verify_with_quorum(world: World) -> None:
    world.eval(1, 4)
    cp = world.checkpoint("cp-6")
    result = world.cosign(cp)
    assert result.exit_code == 0, result.output
    line = result.stdout
    assert line.startswith("\u2014 qa.example/w1 ") and line.count("\n") == 1
    assert "cosigned `example.com/gxp-log` at size 6" in result.stderr
    assert json.loads(world.state.read_text())["logs"]["example.com/gxp-log"]["size"] == 6
    (world.root / "w1.cosig").write_text(line)

    result = run(
        "log",
        "cosign",
        "--log",
        str(world.db),
        "--witness-key",
        world.w_vkey,
        world.path("w1.cosig"),
    )
    assert result.exit_code == 0, result.output
    assert "attached cosignature by `qa.example/w1` to the checkpoint at size 6" in result.stderr
    again = run("log", "cosign", "--log", str(world.db), "--witness-key", world.w_vkey, "-",
                input=line)  # fmt: skip
    assert again.exit_code == 0 and "already attached" in again.stderr

    result = run("log", "prove", "3", "--log", str(world.db), "--output", world.path("p.proof"))
    assert result.exit_code == 0, result.output
    proof = world.path("p.proof")
    assert (world.root / "p.proof").read_text().endswith(line)

    base = ("log", "verify-proof", proof, "--verifier-key", world.log_vkey)
    result = run(*base, "--witness-key", world.w_vkey, "--quorum", "1")
    assert result.exit_code == 0, result.output
    assert "ok: leaf 3 is in `example.com/gxp-log` at tree size 6" in result.stdout
    assert "cosigned by `qa.example/w1` at 20" in result.stdout
    # without witness keys the proof still verifies as before
    assert run(*base).exit_code == 0
    # a second, trusted witness that never cosigned: a quorum of 2 is not met
    two = (*base, "--witness-key", world.w_vkey, "--witness-key", world.w2_vkey)
    result = run(*two, "--quorum", "2")
    assert result.exit_code == 1
    assert "cosigned by 1 of 2 trusted witnesses" in result.stderr
    assert run(*two).exit_code == 1  # the default quorum is every witness given
    assert run(*two, "--quorum", "1").exit_code == 0
    result = run(*two, "--quorum", "3")
    assert result.exit_code == 2 and "can never be met" in result.stderr
    result = run(*base, "--quorum", "1")
    assert result.exit_code == 2 and "needs --witness-key" in result.stderr
    result = run(*base, "--witness-key", world.log_vkey)
    assert result.exit_code == 2 and "type 0x04" in result.stderr

    # a tampered cosignature in the proof file is caught
    text = (world.root / "p.proof").read_text()
    sig = line.split(" ")[2]
    flipped = sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
    (world.root / "bad.proof").write_text(text.replace(sig, flipped))
    result = run("log", "verify-proof", world.path("bad.proof"), "--verifier-key",
                 world.log_vkey, "--witness-key", world.w_vkey)  # fmt: skip
    assert result.exit_code == 1 and "proof does not verify" in result.stderr


def test_log_verify_checks_stored_cosignatures(world: World) -> None:
    world.eval(1, 4)
    line = world.cosign(world.checkpoint("cp")).stdout
    (world.root / "w1.cosig").write_text(line)
    run("log", "cosign", "--log", str(world.db), "--witness-key", world.w_vkey,
        world.path("w1.cosig"))  # fmt: skip
    base = ("log", "verify", "--log", str(world.db), "--verifier-key", world.log_vkey)
    result = run(*base, "--witness-key", world.w_vkey, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["cosignatures"] == 1
    assert "1 witness cosignature verified" in run(*base, "--witness-key", world.w_vkey).stdout
    # an attacker with file access swaps the stored line for another signature
    db = sqlite3.connect(world.db)
    db.execute("DROP TRIGGER cosignatures_no_update")
    sig = line.split(" ")[2].strip()
    forged = sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
    db.execute("UPDATE cosignatures SET line = replace(line, ?, ?)", (sig, forged))
    db.commit()
    db.close()
    result = run(*base, "--witness-key", world.w_vkey)
    assert result.exit_code == 1 and "cosignature by `qa.example/w1` for size 6" in result.stderr
    # without the witness key the log itself still verifies: cosignatures are extra evidence
    assert run(*base).exit_code == 0


def test_export_and_verify_export_with_witnesses(world: World) -> None:
    world.eval(1, 3)
    cp = world.checkpoint("cp")
    line = world.cosign(cp).stdout
    (world.root / "c").write_text(line)
    assert run("log", "cosign", "--log", str(world.db), "--witness-key", world.w_vkey,
               world.path("c")).exit_code == 0  # fmt: skip
    out = world.root / "export"
    assert run("log", "export", str(out), "--log", str(world.db)).exit_code == 0
    assert (out / "checkpoint").read_text() == cp.read_text() + line
    assert (out / "checkpoints" / "5").read_text().endswith(line)
    base = ("log", "verify-export", str(out), "--verifier-key", world.log_vkey)
    result = run(*base, "--witness-key", world.w_vkey, "--quorum", "1")
    assert result.exit_code == 0, result.output
    assert "cosigned by `qa.example/w1`" in result.stdout
    result = run(*base, "--witness-key", world.w_vkey, "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["ok"] and [c["witness"] for c in doc["cosignatures"]] == ["qa.example/w1"]
    assert run(*base).exit_code == 0  # cosignatures from keys not given are ignored
    result = run(*base, "--witness-key", world.w_vkey, "--witness-key", world.w2_vkey)
    assert result.exit_code == 1 and "fewer than the quorum of 2" in result.stderr
    # a cosignature that does not verify fails the export check
    sig = line.split(" ")[2]
    flipped = sig[:30] + ("A" if sig[30] != "A" else "B") + sig[31:]
    path = out / "checkpoints" / "5"
    path.write_text(path.read_text().replace(sig, flipped))
    result = run(*base, "--witness-key", world.w_vkey)
    assert result.exit_code == 1 and "checkpoints/5: invalid signature" in result.stderr


def test_witness_refuses_unproven_inconsistent_and_rolled_back_checkpoints(world: World) -> None:
    world.eval(1, 3)
    first = world.checkpoint("cp-5")
    assert world.cosign(first).exit_code == 0
    world.eval(10, 2)
    second = world.checkpoint("cp-8")
    size = json.loads(world.state.read_text())["logs"]["example.com/gxp-log"]["size"]
    assert size == 5
    # larger, but no consistency proof
    result = world.cosign(second)
    assert result.exit_code == 1
    assert "not proven consistent with size 5" in result.stderr
    assert "policyengine log consistency 5 8" in result.stderr
    # a proof from the wrong size (JSON form carries its sizes)
    wrong = run("log", "consistency", "4", "8", "--log", str(world.db), "--format", "json")
    (world.root / "wrong.json").write_text(wrong.stdout)
    result = world.cosign(second, "--consistency", world.path("wrong.json"))
    assert result.exit_code == 1 and "proof starts at size 4" in result.stderr
    # a proof that does not connect the roots (text form: just the hashes)
    (world.root / "wrong.txt").write_text(
        run("log", "consistency", "4", "8", "--log", str(world.db)).stdout
    )
    result = world.cosign(second, "--consistency", world.path("wrong.txt"))
    assert result.exit_code == 1 and "not consistent with size 5" in result.stderr
    assert json.loads(world.state.read_text())["logs"]["example.com/gxp-log"]["size"] == 5
    # the right proof
    good = run("log", "consistency", "5", "8", "--log", str(world.db), "--format", "json")
    (world.root / "good.json").write_text(good.stdout)
    result = world.cosign(second, "--consistency", world.path("good.json"))
    assert result.exit_code == 0, result.output
    assert json.loads(world.state.read_text())["logs"]["example.com/gxp-log"]["size"] == 8
    # the older checkpoint is now a rollback
    result = world.cosign(first)
    assert result.exit_code == 1 and "rollback" in result.stderr
    # a checkpoint the log did not sign
    result = run("witness", "cosign", "--key", str(world.w_key), "--log-key", world.w2_vkey,
                 str(second))  # fmt: skip
    assert result.exit_code == 2 and "invalid verifier key" in result.stderr
    forged = second.read_text().replace("\n8\n", "\n9\n")
    result = run(
        "witness", "cosign", "--key", str(world.w_key), "--log-key", world.log_vkey,
        "--state", str(world.state), "-", input=forged,
    )  # fmt: skip
    assert result.exit_code == 1 and "not cosigned" in result.stderr
    # stateless cosigning works but warns; --consistency then makes no sense
    result = run("witness", "cosign", "--key", str(world.w_key), "--log-key", world.log_vkey,
                 str(first))  # fmt: skip
    assert result.exit_code == 0 and "cannot refuse a rollback" in result.stderr
    result = run("witness", "cosign", "--key", str(world.w_key), "--log-key", world.log_vkey,
                 "--consistency", world.path("good.json"), str(second))  # fmt: skip
    assert result.exit_code == 2 and "--consistency needs --state" in result.stderr


def test_log_cosign_rejects_lines_that_do_not_verify(world: World) -> None:
    world.eval(1, 3)
    cp = world.checkpoint("cp")
    line = world.cosign(cp).stdout
    (world.root / "c").write_text(line)
    # the wrong witness key
    result = run("log", "cosign", "--log", str(world.db), "--witness-key", world.w2_vkey,
                 world.path("c"))  # fmt: skip
    assert result.exit_code == 1 and "not by witness `qa.example/w2`" in result.stderr
    # a newer checkpoint: the line was for size 5
    world.eval(10, 1)
    result = run("log", "cosign", "--log", str(world.db), "--witness-key", world.w_vkey,
                 world.path("c"))  # fmt: skip
    assert result.exit_code == 1 and "--size" in result.stderr
    result = run("log", "cosign", "--log", str(world.db), "--witness-key", world.w_vkey,
                 "--size", "5", world.path("c"))  # fmt: skip
    assert result.exit_code == 0, result.output
    (world.root / "empty").write_text("\n")
    result = run("log", "cosign", "--log", str(world.db), "--witness-key", world.w_vkey,
                 world.path("empty"))  # fmt: skip
    assert result.exit_code == 2 and "holds no cosignature line" in result.stderr
