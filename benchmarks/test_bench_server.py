"""Decisions per second over HTTP (`policyengine serve`) at concurrency 1 and 32, p50/p99
latency, against the in-process engine in the same run (issue 7).

    pytest benchmarks/test_bench_server.py --benchmark-only -s   # ~40 s

The server runs as a subprocess with its defaults (JSON request log on, to a file) on
loopback, without and with the signed decision log. The client is a minimal asyncio
HTTP/1.1 keep-alive client, one connection per concurrent worker: httpx's own per-request
cost (~1 ms at concurrency 32) would otherwise be what is measured. Client and server share
the machine's two cores, so these are end-to-end figures for one box. The workload cycles
through the 59 events of examples/biotech.jsonl (every layer of the policy library),
each sent with a fresh id. Figures land in `extra_info`; nothing asserts wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.events.pseudonym import generate_pseudonym_key, load_pseudonym_key
from policyengine.log import DecisionRecorder, TransparencyLog, generate_key_file

ROOT = Path(__file__).resolve().parent.parent
EVENTS = [
    json.loads(line) for line in (ROOT / "examples" / "biotech.jsonl").read_text().splitlines()
]
RESULTS: dict[str, dict[str, float]] = {}


def _events(n: int, tag: str) -> Iterator[dict[str, Any]]:
    for i in range(n):
        e = EVENTS[i % len(EVENTS)]
        yield {**e, "id": f"{e['id']}-{tag}-{i}"}


def _stats(latencies: list[float], elapsed: float) -> dict[str, float]:
    latencies.sort()
    n = len(latencies)
    return {
        "decisions_per_s": round(n / elapsed),
        "p50_ms": round(latencies[n // 2] * 1000, 3),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 3),
        "n": n,
    }


async def _drive(port: int, events: list[bytes], concurrency: int) -> tuple[list[float], float]:
    """POST each body to /v1/evaluate over `concurrency` keep-alive connections."""
    latencies: list[float] = []
    queue = iter(events)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in queue:
                head = (
                    b"POST /v1/evaluate HTTP/1.1\r\nhost: bench\r\n"
                    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
                )
                t0 = time.perf_counter()
                writer.write(head + body)
                response = await reader.readuntil(b"\r\n\r\n")
                status = int(response.split(b" ", 2)[1])
                length = next(
                    int(line.split(b":")[1])
                    for line in response.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise AssertionError(f"HTTP {status}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Server:
    def __init__(self, folder: Path, logged: bool) -> None:
        self.port = _free_port()
        args = ["-p", str(ROOT / "policies"), "--port", str(self.port), "--reload-interval", "0"]
        if logged:
            key = folder / "bench.key"
            generate_key_file(key, "bench.example/log")
            # The example stream carries patient ids: a logging server pseudonymises them.
            pseudonyms = folder / "bench.pseudonym"
            generate_pseudonym_key(pseudonyms)
            args += ["--log", str(folder / "bench.db"), "--key", str(key)]
            args += ["--pseudonym-key", str(pseudonyms)]
        self.stderr = open(folder / f"server-{logged}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "policyengine.cli.serve", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.stderr.close()


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _http(folder: Path, logged: bool) -> dict[str, dict[str, float]]:
    server = _Server(folder, logged)
    out: dict[str, dict[str, float]] = {}
    try:
        tag = "log" if logged else "nolog"
        warm = [json.dumps(e).encode() for e in _events(300, f"warm-{tag}")]
        asyncio.run(_drive(server.port, warm, 8))
        for concurrency, n in ((1, 1500), (32, 6000)):
            bodies = [json.dumps(e).encode() for e in _events(n, f"{tag}-{concurrency}")]
            latencies, elapsed = asyncio.run(_drive(server.port, bodies, concurrency))
            out[f"http c={concurrency}"] = _stats(latencies, elapsed)
    finally:
        server.close()
    return out


def _in_process(folder: Path, logged: bool) -> dict[str, float]:
    bundle = pe.load_bundle(ROOT / "policies")
    recorder = None
    pseudonymiser = None
    if logged:
        signer = pe.Signer.generate("bench.example/inproc")
        recorder = DecisionRecorder(TransparencyLog.open(folder / "inproc.db", signer, create=True))
        generate_pseudonym_key(folder / "inproc.pseudonym")
        pseudonymiser = load_pseudonym_key(folder / "inproc.pseudonym")
    engine = pe.Engine(bundle, clock=pe.wall_clock, recorder=recorder, pseudonymiser=pseudonymiser)
    events = [pe.parse_event(e) for e in _events(6000 if not logged else 1500, "inproc")]
    latencies = []
    started = time.perf_counter()
    for e in events:
        t0 = time.perf_counter()
        engine.evaluate(e, validated=True)
        latencies.append(time.perf_counter() - t0)
    return _stats(latencies, time.perf_counter() - started)


@pytest.mark.benchmark(group="server")
def test_http_without_log(benchmark: Any, folder: Path) -> None:
    figures = benchmark.pedantic(_http, args=(folder, False), rounds=1, iterations=1)
    inproc = _in_process(folder, False)
    RESULTS["no log, in-process Engine.evaluate"] = inproc
    for name, f in figures.items():
        RESULTS[f"no log, {name}"] = f
    benchmark.extra_info.update({k: v for k, v in RESULTS.items() if k.startswith("no log")})


@pytest.mark.benchmark(group="server")
def test_http_with_signed_log(benchmark: Any, folder: Path) -> None:
    figures = benchmark.pedantic(_http, args=(folder, True), rounds=1, iterations=1)
    inproc = _in_process(folder, True)
    RESULTS["signed log, in-process Engine.evaluate (one append each)"] = inproc
    for name, f in figures.items():
        RESULTS[f"signed log, {name}"] = f
    benchmark.extra_info.update({k: v for k, v in RESULTS.items() if k.startswith("signed")})
    width = max(len(k) for k in RESULTS)
    lines = [f"{'configuration':<{width}}  decisions/s   p50 ms   p99 ms"]
    for name, f in RESULTS.items():
        lines.append(
            f"{name:<{width}}  {f['decisions_per_s']:>11,.0f}  {f['p50_ms']:>7.3f}  "
            f"{f['p99_ms']:>7.3f}"
        )
    print("\n" + "\n".join(lines), file=sys.stderr)
    assert os.cpu_count()
