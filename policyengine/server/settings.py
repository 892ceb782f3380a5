"""What a decision server is told at start-up: plain data, so tests and embedders build one in
a line and `create_app` stays a pure function of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from policyengine.runtime.clock import Clock, wall_clock

__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_BODY", "DEFAULT_PORT", "ServerSettings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8181
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a batch of ~1,000 typical events


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Configuration of one decision service.

    `clock` defaults to the wall clock: a live service judges events as they arrive, and an
    event's own `time` is whatever the client wrote. Pass `event_time` for deterministic
    decisions (the replay semantics of `policyengine eval`).
    """

    #: Policy files or directories; all are watched for changes.
    policies: tuple[str, ...]
    #: The signed decision log (created when missing); `None` = decisions are not recorded.
    log_path: str | None = None
    #: The log's private key file; required with `log_path`.
    key_path: str | None = None
    #: Bearer token that write endpoints require; `None` = no authentication.
    token: str | None = field(default=None, repr=False)
    #: Largest accepted request body, in bytes.
    max_body_bytes: int = DEFAULT_MAX_BODY
    #: Most events accepted in one request.
    max_batch_events: int = 1000
    #: Seconds between checks of the policy files for changes; 0 = only on SIGHUP.
    reload_interval_s: float = 2.0
    #: Where `now` comes from for each event.
    clock: Clock = wall_clock
    #: Rebuild entity state from the log at start-up (otherwise start empty).
    restore_state: bool = True
    #: Most events decided together in one durable log append (group commit).
    group_max_events: int = 512
    #: Directory whose data files `POST /v1/drift` may read by relative path; `None` = the
    #: drift endpoint accepts inline data only (a request never names arbitrary files).
    data_root: str | None = None
    #: Key file for pseudonymising patient identifiers at intake (`policyengine keys
    #: pseudonym`); with a log and no key, events carrying identifiers are refused.
    pseudonym_key_path: str | None = None
    #: Signer registry (`policyengine signers add`) that electronic signatures are verified
    #: against at intake, re-read when the file changes; `None` = signatures are
    #: `unverified` and never count.
    signers_path: str | None = None

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("at least one policy path is needed")
        if (self.log_path is None) != (self.key_path is None):
            raise ValueError("log_path and key_path go together")
        if self.token is not None and not self.token:
            raise ValueError("an empty token would accept anything; pass None for no auth")
        if self.max_body_bytes < 1 or self.max_batch_events < 1 or self.group_max_events < 1:
            raise ValueError("limits must be positive")
        if self.reload_interval_s < 0:
            raise ValueError("reload_interval_s must be >= 0")
