"""Durability and concurrency of the decision log, with real processes and real `kill -9`.

A child process (`log_worker.py`) appends batches and prints each range only after `append`
returned. The parent SIGKILLs it at seeded random moments — during interpreter start-up,
while it opens the log, inside large batches (so the kill lands in the transaction or its
fsync), right after an acknowledgement — then reopens the file and checks the issue's
promise: the log verifies, nothing acknowledged is lost or altered, every batch is there
whole or not at all, and the log keeps working. Several processes then append to one file
at once, one of them killed mid-transaction.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from log_worker import leaf, parse

from policyengine.log import (
    Signer,
    TransparencyLog,
    generate_key_file,
    verify_checkpoint,
    verify_consistency,
)

WORKER = Path(__file__).with_name("log_worker.py")
ORIGIN = "example.com/policyengine/durability"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX SIGKILL")


@dataclass
class Run:
    """One child process and what it told the parent before it died or finished."""

    worker: int
    round: int
    batches: list[int]
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    watchdog: threading.Timer | None = None
    stderr: Any = None

    def report(self) -> str:
        """Its last lines and the end of its stderr: what a failed assertion should show."""
        err = ""
        if self.stderr is not None:
            self.stderr.seek(0)
            err = self.stderr.read()[-1500:]
        return f"worker {self.worker}: {self.lines[-2:]} stderr: {err!r}"

    def readline(self) -> str:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line:
            self.lines.append(line.strip())
        return line.strip()

    def wait_for(self, prefix: str) -> bool:
        while line := self.readline():
            if line.startswith(prefix):
                return True
        return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def finish(self) -> int:
        """Collect every line it flushed before it ended, then its exit status.

        Reads through the same buffered file as `readline` (`communicate` with a timeout
        would bypass that buffer and drop lines already read ahead); EOF comes when the
        process is gone, and the watchdog bounds the wait.
        """
        assert self.proc.stdout is not None
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        self.lines.extend(line.strip() for line in rest.splitlines() if line.strip())
        code = self.proc.wait(timeout=60)
        if self.watchdog is not None:
            self.watchdog.cancel()
        return code

    def acks(self) -> dict[int, range]:
        return {
            int(b): range(int(start), int(stop))
            for kind, b, start, stop in (ln.split() for ln in self.lines if ln.startswith("ack"))
        }

    def begun(self) -> int:
        return sum(1 for ln in self.lines if ln.startswith("begin"))

    def killed_inside_append(self) -> bool:
        return bool(self.lines) and self.lines[-1].startswith("begin")


def _spawn(path: Path, key: Path, worker: int, round_: int, batches: list[int]) -> Run:
    config = {"path": str(path), "key": str(key), "worker": worker, "round": round_}
    stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed with the run's file objects
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(config | {"batches": batches})],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    run = Run(worker, round_, batches, proc, stderr=stderr)
    run.watchdog = threading.Timer(60, run.kill)  # a hung child must fail the test, not stall it
    run.watchdog.daemon = True
    run.watchdog.start()
    return run


def _check(path: Path, signer: Signer, runs: Iterable[Run]) -> dict[tuple[int, int], int]:
    """Reopen the log and check every promise; return the batches found per (worker, round)."""
    runs = list(runs)
    with TransparencyLog.open(path, create=True) as log:
        report = log.audit(signer.verifier)
        assert report.ok, report.problems
        size = log.size()
        data = [d for _, d in log.leaves()]
        assert len(data) == size
        found: dict[tuple[int, int, int], range] = {}
        pos = 0
        while pos < size:  # the leaves must split into whole batches, each exactly once
            worker, round_, batch, i, n = parse(data[pos])
            assert i == 0, f"leaf {pos} starts in the middle of a batch"
            key = (worker, round_, batch)
            assert key not in found, f"batch {key} appears twice"
            assert data[pos : pos + n] == [leaf(worker, round_, batch, j, n) for j in range(n)]
            found[key] = range(pos, pos + n)
            pos += n
        latest = log.latest_checkpoint()
        # Every append signs in its own transaction, so leaves and checkpoint land together.
        assert (latest.size if latest else 0) == size
    count: dict[tuple[int, int], int] = {}
    for run in runs:
        present = sorted(b for (w, r, b) in found if (w, r) == (run.worker, run.round))
        assert present == list(range(len(present))), "a later batch landed without an earlier"
        acks = run.acks()
        assert len(present) >= len(acks), "an acknowledged batch is missing"
        assert len(present) <= run.begun()
        for b, span in acks.items():
            assert found[(run.worker, run.round, b)] == span
            assert len(span) == run.batches[b]
        count[(run.worker, run.round)] = len(present)
    return count


def _assert_still_works(path: Path, signer: Signer) -> None:
    with TransparencyLog.open(path, signer) as log:
        before = log.size()
        got = log.append([leaf(-1, -1, 0, 0, 1)])  # a batch of its own, as _check expects
        assert got == range(before, before + 1)
        cp = log.sign_checkpoint()
        assert cp.size == before + 1
        assert log.audit(signer.verifier).ok


@pytest.fixture(scope="module")
def per_leaf_s(tmp_path_factory: pytest.TempPathFactory) -> float:
    """Seconds one leaf of a big append takes here, to aim kills inside transactions."""
    path = tmp_path_factory.mktemp("calibrate") / "c.db"
    leaves = [leaf(0, 0, 0, i, 8_000) for i in range(8_000)]
    with TransparencyLog.open(path, Signer.generate(ORIGIN), create=True) as log:
        t0 = time.perf_counter()
        log.append(leaves)
        return (time.perf_counter() - t0) / len(leaves)


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, Signer]:
    path = tmp_path / "log.key"
    return path, generate_key_file(path, ORIGIN)


def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Path, key: tuple[Path, Signer], per_leaf_s: float
) -> None:
    keyfile, signer = key
    rng = random.Random(20261126)
    db = tmp_path / "decisions.db"
    runs: list[Run] = []
    inside = 0
    plans = ["startup", "inside", "stream", "inside", "after-ack", "inside", "startup", "inside"]
    plans += ["stream", "inside"]
    for round_, plan in enumerate(plans):
        small = [rng.randrange(1, 40) for _ in range(rng.randrange(3, 12))]
        if plan == "inside":
            big = rng.randrange(30_000, 50_000)  # ~0.2-0.4 s of transaction here
            at = rng.randrange(len(small))
            batches = [*small[:at], big, *small[at:]]
        elif plan == "stream":
            batches = [rng.randrange(1, 4) for _ in range(3_000)]
        elif plan == "startup":
            batches = small * 5
        else:
            batches = small
        run = _spawn(db, keyfile, 0, round_, batches)
        if plan == "startup":
            # Anywhere from interpreter start to the first appends (the log opens ~0.3 s in).
            time.sleep(rng.uniform(0.0, 0.35))
        elif plan == "inside":
            for _ in range(at + 1):
                assert run.wait_for("begin"), run.lines
            # At most half the batch's expected time: slack for a loaded machine's scheduling.
            time.sleep(rng.uniform(0.0, 0.5 * big * per_leaf_s))
        elif plan == "stream":
            assert run.wait_for("open")
            time.sleep(rng.uniform(0.02, 0.5))  # ~2 commits per ms here
        else:
            for _ in range(rng.randrange(1, len(batches) + 1)):
                assert run.wait_for("ack"), run.lines
        run.kill()
        assert run.finish() in (-signal.SIGKILL, 0)
        inside += run.killed_inside_append()
        runs.append(run)
        _check(db, signer, runs)
    # The point of the big batches: some kills did land between BEGIN and the acknowledgement.
    assert inside >= 2, [r.lines[-1:] for r in runs]
    _assert_still_works(db, signer)
    _check(db, signer, runs)


def test_sigkill_while_a_new_log_is_created_and_first_filled(
    tmp_path: Path, key: tuple[Path, Signer]
) -> None:
    keyfile, signer = key
    rng = random.Random(7)
    for attempt in range(3):
        db = tmp_path / f"fresh{attempt}.db"
        run = _spawn(db, keyfile, 0, 0, [rng.randrange(500, 3000) for _ in range(3)])
        if attempt:  # just after the log was created and the key adopted
            assert run.wait_for("open"), run.lines
            time.sleep(rng.uniform(0.0, 0.02))
        else:  # somewhere in start-up, creation or the first batch
            time.sleep(rng.uniform(0.2, 0.35))
        run.kill()
        run.finish()
        if not db.exists():
            continue  # killed before SQLite created the file: nothing to check
        _check(db, signer, [run])
        _assert_still_works(db, signer)


def _checkpoints_consistent(path: Path, signer: Signer) -> int:
    with TransparencyLog.open(path) as log:
        cps = log.store.checkpoints()
        for cp in cps:
            signed = verify_checkpoint(cp.note, signer.verifier, ORIGIN)
            assert (signed.size, signed.root) == (cp.size, cp.root) == (cp.size, log.root(cp.size))
        for old, new in itertools.pairwise(cps):
            proof = log.consistency(old.size, new.size)
            verify_consistency(old.size, new.size, proof, old.root, new.root)
        return len(cps)


def test_concurrent_appenders_are_serialised(tmp_path: Path, key: tuple[Path, Signer]) -> None:
    keyfile, signer = key
    rng = random.Random(42)
    db = tmp_path / "shared.db"  # missing: the workers race to create it too
    plans = [[rng.randrange(1, 60) for _ in range(25)] + [2_000] for _ in range(4)]
    runs = [_spawn(db, keyfile, w, 0, batches) for w, batches in enumerate(plans)]
    assert [run.finish() for run in runs] == [0, 0, 0, 0], [r.report() for r in runs]
    counts = _check(db, signer, runs)
    assert counts == {(w, 0): len(plans[w]) for w in range(4)}
    with TransparencyLog.open(db) as log:
        assert log.size() == sum(map(sum, plans))
    assert _checkpoints_consistent(db, signer) == sum(map(len, plans))


def test_kill_one_of_several_appenders_mid_transaction(
    tmp_path: Path, key: tuple[Path, Signer], per_leaf_s: float
) -> None:
    keyfile, signer = key
    rng = random.Random(99)
    db = tmp_path / "shared.db"
    with TransparencyLog.open(db, signer, create=True):
        pass
    plans = [[rng.randrange(1, 30) for _ in range(20)] for _ in range(3)]
    plans[0][5:5] = [40_000]  # the victim's big batch: the kill lands in its transaction
    runs = [_spawn(db, keyfile, w, 0, batches) for w, batches in enumerate(plans)]
    victim = runs[0]
    for _ in range(6):
        assert victim.wait_for("begin"), victim.lines
    time.sleep(rng.uniform(0.0, 0.3 * 40_000 * per_leaf_s))
    victim.kill()
    assert victim.finish() == -signal.SIGKILL
    assert victim.killed_inside_append(), victim.lines[-2:]
    # The write lock dies with the victim; the others carry on and finish.
    assert [run.finish() for run in runs[1:]] == [0, 0], [r.report() for r in runs]
    counts = _check(db, signer, runs)
    assert counts[(1, 0)] == len(plans[1]) and counts[(2, 0)] == len(plans[2])
    assert counts[(0, 0)] in (5, 6)  # its big batch is there whole, or not at all
    _checkpoints_consistent(db, signer)
    _assert_still_works(db, signer)
