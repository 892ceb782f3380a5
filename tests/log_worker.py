"""A decision-log appender run as a child process by `test_log_durability.py`.

    python log_worker.py '{"path": …, "key": …, "worker": 0, "round": 0, "batches": [3, 5000]}'

It prints `open` once the log is open, `begin B` before appending batch B and
`ack B START STOP` only after `append` returned (the batch is durable), flushing each line,
so the parent knows exactly what was acknowledged when it sends SIGKILL. Leaf bytes are a
pure function of (worker, round, batch, i, n): the parent regenerates them to compare.
"""

from __future__ import annotations

import hashlib
import json
import sys

PAD = 520  # hex characters: leaves come out near 600 bytes, like a decision record


def leaf(worker: int, round_: int, batch: int, i: int, n: int) -> bytes:
    seed = f"{worker}/{round_}/{batch}/{i}".encode()
    pad = (hashlib.sha256(seed).hexdigest() * (PAD // 64 + 1))[:PAD]
    body = {"batch": batch, "i": i, "kind": "event", "n": n, "pad": pad, "round": round_}
    body |= {"time": "2026-01-01T00:00:00Z", "v": 1, "worker": worker}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def parse(data: bytes) -> tuple[int, int, int, int, int]:
    """(worker, round, batch, i, n) of a leaf written by `leaf`."""
    obj = json.loads(data)
    return obj["worker"], obj["round"], obj["batch"], obj["i"], obj["n"]


def main(config: dict[str, object]) -> None:
    from policyengine.log import TransparencyLog, load_signer

    worker, round_ = int(config["worker"]), int(config["round"])  # type: ignore[call-overload]
    batches: list[int] = list(config["batches"])  # type: ignore[call-overload]
    log = TransparencyLog.open(str(config["path"]), load_signer(str(config["key"])), create=True)
    print("open", flush=True)
    for b, n in enumerate(batches):
        leaves = [leaf(worker, round_, b, i, n) for i in range(n)]
        print(f"begin {b}", flush=True)
        got = log.append(leaves)
        print(f"ack {b} {got.start} {got.stop}", flush=True)
    log.close()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
