"""`policyengine serve`: the HTTP decision API (needs the `server` extra)."""

from __future__ import annotations

import gc
import logging
import logging.config
import os
import stat
from pathlib import Path
from typing import Any

import click

from policyengine.cli._common import (
    CliError,
    fail_compile,
    no_color_option,
    parse_now,
    require_paths,
)
from policyengine.events.pseudonym import load_pseudonym_key
from policyengine.language.diagnostics import CompileError
from policyengine.log import LogError
from policyengine.oversight.registry import RegistryError
from policyengine.oversight.reviews import ReviewError
from policyengine.runtime.clock import Clock, event_time, wall_clock

TOKEN_ENV = "POLICYENGINE_TOKEN"

EPILOG = f"""\b
Endpoints (OpenAPI at /v1/openapi.json; see docs/server.md):
  POST /v1/evaluate, /v1/evaluate/batch, /v1/events   decide (and record)
  GET  /v1/decisions/ID[/proof], /v1/log[/checkpoint] read the log
  GET  /v1/reviews[/ID]; POST /v1/reviews/ID/signatures, /v1/reviews/escalate
  GET  /v1/bundle, /v1/health, /v1/ready, /metrics     operate

\b
Policies are reloaded when their files change (--reload-interval) and on
SIGHUP; a bundle that does not compile is rejected and the old one serves on.
Write endpoints need `Authorization: Bearer TOKEN` when a token is set with
--token-file or the {TOKEN_ENV} environment variable.

\b
SIGINT/SIGTERM stop it gracefully: in-flight requests finish and queued
decisions are logged; the process then ends by that signal. Exit code 2: bad
options, policies that do not compile, an unusable log or key, or an address
that cannot be bound.
"""

NOW_HELP = (
    "Evaluation time policies see as `now`: `wall` (default: the server's clock), `event` "
    "(each event's own time, as `eval` does) or a fixed RFC 3339 timestamp."
)


def _clock(value: str) -> Clock:
    v = value.strip().lower()
    if v == "wall":
        return wall_clock
    if v == "event":
        return event_time
    return parse_now(value)


def _read_token(path: str | None) -> str | None:
    """The bearer token from --token-file (which must not be readable by others) or the
    environment; never from the command line, where `ps` and shell history would show it."""
    if path is None:
        value = os.environ.get(TOKEN_ENV)
        if value is None:
            return None
        if not value.strip():
            raise CliError(f"{TOKEN_ENV} is set but empty", "unset it, or set a token")
        return value.strip()
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CliError(f"no token file `{path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read token file `{path}`: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CliError(
            f"token file `{path}` is accessible by other users (mode {stat.S_IMODE(mode):04o})",
            f"`chmod 600 {path}`",
        )
    if not text:
        raise CliError(f"token file `{path}` is empty")
    return text


@click.command("serve", epilog=EPILOG)
@click.option(
    "--policies",
    "-p",
    "policies",
    required=True,
    multiple=True,
    metavar="PATH",
    help="Policy file or directory (repeatable); watched for changes.",
)
@click.option(
    "--log",
    "log_path",
    metavar="DB",
    help="Record every decision in this signed decision log (created if missing) before "
    "answering; needs --key. Without it decisions are not recorded.",
)
@click.option("--key", "key_path", metavar="KEYFILE", help="The log's Ed25519 private key.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8181, show_default=True, help="TCP port."
)
@click.option(
    "--token-file",
    metavar="FILE",
    help=f"File holding the bearer token for write endpoints (mode 0600); or set {TOKEN_ENV}.",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    metavar="BYTES",
    help="Largest request body accepted (413 above it).",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    metavar="N",
    help="Most events in one request.",
)
@click.option(
    "--reload-interval",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    metavar="S",
    help="Seconds between checks of the policy files; 0 = reload only on SIGHUP.",
)
@click.option(
    "--pseudonym-key",
    "pseudonym_key",
    metavar="FILE",
    help="Pseudonymise patient identifiers at intake with this key (`policyengine keys "
    "pseudonym`); with --log and no key, events carrying identifiers are refused.",
)
@click.option(
    "--signers",
    "signers_path",
    metavar="FILE",
    help="Signer registry (`policyengine signers add`) that electronic signatures are "
    "verified against at intake, re-read when it changes; without it they count as "
    "`unverified`.",
)
@click.option(
    "--data-root",
    metavar="DIR",
    help="Directory whose data files POST /v1/drift may name by relative path (default: "
    "inline data only).",
)
@click.option("--now", "now", default="wall", show_default=True, metavar="WHEN", help=NOW_HELP)
@click.option(
    "--fresh-state",
    is_flag=True,
    help="Start with empty entity state instead of rebuilding it from the log.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    help="Level of the JSON log lines on stderr (info: one line per request).",
)
@no_color_option
def serve_cmd(
    policies: tuple[str, ...],
    log_path: str | None,
    key_path: str | None,
    host: str,
    port: int,
    token_file: str | None,
    max_body: int,
    max_batch: int,
    reload_interval: float,
    pseudonym_key: str | None,
    signers_path: str | None,
    data_root: str | None,
    now: str,
    fresh_state: bool,
    log_level: str,
) -> None:
    """Serve decisions over HTTP: evaluate events, record them, serve proofs and metrics.

    Entity state lives in memory and, with --log, is rebuilt from the log at start-up, so a
    restarted server counts the approvals and overrides it had recorded before.
    """
    try:
        from policyengine import server
        from policyengine.server.jsonlog import LOGGER
    except ImportError as exc:
        raise CliError(
            f"`policyengine serve` needs the server extra ({exc.name} is not installed)",
            "pip install 'policyengine[server]'",
        ) from None
    require_paths(policies)
    if pseudonym_key is not None:
        try:
            load_pseudonym_key(pseudonym_key)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if data_root is not None and not Path(data_root).is_dir():
        raise CliError(f"--data-root `{data_root}` is not a directory")
    if (log_path is None) != (key_path is None):
        raise CliError(
            "--log and --key go together",
            "the log signs a checkpoint for every durable append, so it needs its key",
        )
    config = server.ServerSettings(
        policies=policies,
        log_path=log_path,
        key_path=key_path,
        token=_read_token(token_file),
        max_body_bytes=max_body,
        max_batch_events=max_batch,
        reload_interval_s=reload_interval,
        clock=_clock(now),
        restore_state=not fresh_state,
        data_root=data_root,
        pseudonym_key_path=pseudonym_key,
        signers_path=signers_path,
    )
    logging.config.dictConfig(server.log_config(log_level.lower()))
    service = server.DecisionService(config)
    try:
        service.open()
    except CompileError as err:
        fail_compile(err)
    except (LogError, RegistryError, ReviewError) as exc:
        raise CliError(str(exc)) from None
    # The compiled bundle and restored state live as long as the process: keep the cyclic
    # collector from re-scanning them on every full collection (latency spikes under load).
    gc.collect()
    gc.freeze()
    try:
        sock = server.bind_socket(host, port)
    except OSError as exc:
        service.close()
        raise CliError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "choose another --port, or stop what is using it",
        ) from None
    if not server.is_loopback(host):
        warning: dict[str, Any] = {"event": "exposed", "host": host}
        logging.getLogger(LOGGER).warning(
            "listening on a non-loopback address: the API is reachable from the network"
            + ("" if config.token else "; write endpoints are unauthenticated (set a token)"),
            extra={"fields": warning},
        )
    try:
        server.run(server.create_app(config, service=service), sock, log_level=log_level.lower())
    finally:
        sock.close()
        service.close()


if __name__ == "__main__":  # `python -m policyengine.cli.serve` until main.py registers it
    serve_cmd(prog_name="policyengine serve")
