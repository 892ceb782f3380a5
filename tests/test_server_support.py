"""Shared helpers for the `test_server_*` tests (no tests here): small policies, event
builders, an in-process client for the ASGI app and a real `policyengine serve` process."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent

GATE = """\
package test.gate

/// Production deployments need two approvals by people other than the model's author.
rule two_approvals {
  layer oversight
  severity critical
  enforce hard
  on model.deploy_requested
  when event.target.environment == "production"
  require count(distinct a.signer for a in subject.approvals
                where a.meaning == "approved" and a.signer != subject.created_by) >= 2
          else "needs two independent approvals"
  message "{subject.name} needs two approvals"
}

rule named_model {
  layer audit
  severity low
  enforce advisory
  on model.registered
  require len(event.name) > 3 else "model names are longer than 3 characters"
}
"""

#: The same rules with another message: a different bundle that decides the same way.
GATE_V2 = GATE.replace("needs two approvals", "needs two approvals (v2)")

#: Does not compile: `subject.approvers` is not a field of model_version.
BROKEN = GATE.replace("subject.approvals", "subject.approvers")

_ids = itertools.count()


def next_id(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


def event(
    type_: str, subject_kind: str, subject: str, attributes: dict[str, Any], actor: str = "svc"
) -> dict[str, Any]:
    return {
        "id": next_id(type_.replace(".", "-")),
        "type": type_,
        "time": "2026-03-01T10:00:00Z",
        "actor": {"id": actor, "roles": ["pipeline"]},
        "subject": {"kind": subject_kind, "id": subject},
        "attributes": attributes,
    }


def registered(model: str, author: str = "author", name: str = "tox-model") -> dict[str, Any]:
    return event(
        "model.registered", "model_version", model, {"name": name, "version": "1"}, actor=author
    )


def approval(model: str, signer: str, meaning: str = "approved") -> dict[str, Any]:
    return event(
        "approval.recorded",
        "model_version",
        model,
        {"signer": signer, "role": "qa", "meaning": meaning},
        actor=signer,
    )


def deploy(model: str, environment: str = "production") -> dict[str, Any]:
    return event(
        "model.deploy_requested",
        "model_version",
        model,
        {"target": {"environment": environment}},
        actor="deployer",
    )


def write_policies(folder: Path, text: str = GATE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gate.policy").write_text(text, encoding="utf-8")
    return folder


def key_file(folder: Path) -> Path:
    from policyengine.log import generate_key_file

    path = folder / "log.key"
    if not path.exists():
        generate_key_file(path, "test.example/decisions")
    return path


@contextlib.asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to the ASGI app, with the app's lifespan running around it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_command() -> list[str]:
    """`policyengine serve` once main.py registers it; the module entry point until then."""
    from policyengine.cli.main import cli

    if "serve" in cli.commands:
        return [sys.executable, "-m", "policyengine.cli.main", "serve"]
    return [sys.executable, "-m", "policyengine.cli.serve"]


class ServerProcess:
    """A real `policyengine serve` on a free loopback port, its stderr in a file."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = workdir / f"server-{next(_ids)}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.port = free_port()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*serve_command(), *self.args, "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.stderr()}")
            try:
                if httpx.get(self.url + "/v1/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become ready:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (every stderr line must be one)."""
        return [json.loads(line) for line in self.stderr().splitlines() if line.strip()]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait: a graceful shutdown."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or closed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def running(
    args: list[str], workdir: Path, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(args, workdir, env).start()
    try:
        yield server
    finally:
        server.kill()
