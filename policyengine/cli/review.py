"""`policyengine review`: list, show and act on review items, with Part 11 signatures.

Every action signs with the signer's passphrase-protected key (two components, 11.200),
is judged and appended to the signed decision log like any event, and then judges the
pending request again (`policyengine.oversight.flow`). Exit codes: 0 the action was
accepted, 1 it was refused by the policies (e.g. a self-approval), 2 bad input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from policyengine.audit.restore import restore_state
from policyengine.cli._common import (
    CliError,
    load_policies,
    no_color_option,
    parse_timestamp,
    settings,
)
from policyengine.cli.oversight_common import load_signers, open_reviews
from policyengine.cli.signers import read_passphrase
from policyengine.log import LogError, TransparencyLog, load_signer
from policyengine.oversight.esign import SigningKeyError, load_signing_key
from policyengine.oversight.flow import ActionResult, Oversight, SignerIdentity
from policyengine.oversight.registry import SignerRegistry
from policyengine.oversight.reverify import reverify
from policyengine.oversight.reviews import REVIEW_STATUSES, ReviewError, ReviewItem
from policyengine.runtime.decision import Decision, Outcome
from policyengine.runtime.values import format_timestamp

__all__ = ["review_group"]

_LOG = click.option(
    "--log", "log_path", required=True, metavar="DB", help="The decision log (reviews live in it)."
)
_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
_NOW = click.option(
    "--now", "now", metavar="TIMESTAMP", help="Time of the action (default: the wall clock)."
)


def _acting(f: Any) -> Any:
    """Options every signing action needs."""
    for option in reversed(
        [
            _LOG,
            click.option("--key", "key_path", required=True, metavar="KEYFILE", help="Log key."),
            click.option(
                "--policies",
                "policies",
                required=True,
                multiple=True,
                metavar="PATH",
                help="The policy bundle to judge with (repeatable).",
            ),
            click.option(
                "--signers",
                "signers_path",
                required=True,
                metavar="FILE",
                help="Signer registry the signature is verified against.",
            ),
            click.option("--signer", "signer_id", required=True, metavar="ID", help="Who signs."),
            click.option(
                "--signing-key",
                "signing_key",
                required=True,
                metavar="KEYFILE",
                help="The signer's passphrase-protected key (`policyengine signers keygen`).",
            ),
            click.option("--role", "role", metavar="ROLE", help="Role to sign in."),
            click.option(
                "--passphrase-file",
                "passphrase_file",
                metavar="FILE",
                help="Read the passphrase from FILE (else $POLICYENGINE_SIGNING_PASSPHRASE,"
                " else a prompt).",
            ),
            _NOW,
            _FORMAT,
        ]
    ):
        f = option(f)
    return f


def _now(value: str | None) -> datetime:
    return datetime.now(UTC) if value is None else parse_timestamp(value, "--now")


@click.group("review")
def review_group() -> None:
    """Human review: items opened by rules with `review by`, signed decisions on them."""


# --------------------------------------------------------------------------- reading


@review_group.command("list")
@_LOG
@click.option(
    "--status",
    type=click.Choice([*REVIEW_STATUSES, "all"]),
    default="open",
    show_default=True,
)
@click.option("--overdue", is_flag=True, help="Only open items past their deadline.")
@_NOW
@_FORMAT
@no_color_option
def list_cmd(log_path: str, status: str, overdue: bool, now: str | None, fmt: str) -> None:
    """List review items."""
    at = _now(now)
    with open_reviews(_existing(log_path)) as store:
        items = store.items(None if status == "all" else status)
    if overdue:
        items = [i for i in items if i.overdue(at)]
    if fmt == "json":
        click.echo(json.dumps([i.to_dict(at) for i in items], indent=2))
        return
    if not items:
        click.echo(f"no {'overdue' if overdue else status} review items")
        return
    for i in items:
        late = "  OVERDUE" if i.overdue(at) else ""
        click.echo(
            f"{i.id}  {i.status:<10} {i.subject_kind} {i.subject_id}  {i.rule}  by"
            f" {', '.join(i.roles)}  due {format_timestamp(i.deadline)}{late}"
        )


@review_group.command("show")
@click.argument("review_id")
@_LOG
@_NOW
@_FORMAT
@no_color_option
def show_cmd(review_id: str, log_path: str, now: str | None, fmt: str) -> None:
    """Show one review item with its history (signatures, rechecks, escalation)."""
    at = _now(now)
    with open_reviews(_existing(log_path)) as store:
        item = _get(store, review_id)
    if fmt == "json":
        click.echo(json.dumps(item.to_dict(at), indent=2))
        return
    click.echo(_item_text(item, at))


def _item_text(item: ReviewItem, at: datetime) -> str:
    lines = [
        f"review {item.id} — {item.status}{' (overdue)' if item.overdue(at) else ''}",
        f"  subject   {item.subject_kind} {item.subject_id}",
        f"  rule      {item.rule}",
        f"  reviewers {', '.join(item.roles)} (within {item.within})",
        f"  deadline  {format_timestamp(item.deadline)}",
        f"  waiting   event {item.pending_event['id']} ({item.pending_event['type']})",
    ]
    if item.message:
        lines.append(f"  why       {item.message}")
    lines.append("  history")
    for h in item.history:
        event = f" [{h.event_id}]" if h.event_id else ""
        detail = f" — {h.detail}" if h.detail else ""
        lines.append(f"    {h.time}  {h.action:<14} {h.actor}{event}{detail}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- acting


def _existing(path: str) -> str:
    from pathlib import Path

    if not Path(path).is_file():
        raise CliError(f"no decision log `{path}`", "decide events with `--log` first")
    return path


def _get(store: Any, review_id: str) -> ReviewItem:
    try:
        item: ReviewItem = store.get(review_id)
    except ReviewError as exc:
        raise CliError(str(exc)) from None
    return item


def _oversight(
    log_path: str, key_path: str, policies: tuple[str, ...], signers_path: str | None
) -> tuple[Oversight, TransparencyLog]:
    """The review actions over the log, with the engine state restored from it."""
    bundle = load_policies(policies)
    registry = load_signers(signers_path) or SignerRegistry()
    try:
        log = TransparencyLog.open(_existing(log_path), load_signer(key_path))
    except LogError as exc:
        raise CliError(str(exc)) from None
    restored = restore_state(log)
    reviews = open_reviews(log_path)
    return Oversight(bundle, restored.state, log, reviews, registry), log


def _identity(
    registry: SignerRegistry,
    signer_id: str,
    role: str | None,
    signing_key: str,
    passphrase_file: str | None,
) -> SignerIdentity:
    signer = registry.signer(signer_id)
    if signer is None:
        raise CliError(
            f"`{signer_id}` is not in the signer registry",
            "add them with `policyengine signers add`",
        )
    if role is None:
        if len(signer.roles) != 1:
            raise CliError(
                f"`{signer_id}` holds roles {', '.join(signer.roles) or 'none'}; say which with"
                " --role"
            )
        role = signer.roles[0]
    passphrase = read_passphrase(passphrase_file, confirm=False)
    try:
        key = load_signing_key(signing_key, passphrase)
    except SigningKeyError as exc:
        raise CliError(str(exc)) from None
    return SignerIdentity(signer.id, signer.name, role, key)


def _report(result: ActionResult, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(_decision_line("signature", result.signature))
        if result.recheck is not None:
            click.echo(_decision_line("recheck", result.recheck))
        if result.item is not None:
            click.echo(f"review {result.item.id}: {result.item.status}")
    refused = result.signature.outcome is Outcome.DENY
    if refused or (result.item is not None and result.item.status == "rejected"):
        raise SystemExit(1)


def _decision_line(what: str, d: Decision) -> str:
    text = f"{what} {d.event_id}: {d.outcome.value}"
    for r in d.failures:
        text += f"\n  {r.status} {r.rule}: {r.message}"
    return text


def _act(
    action: str,
    review_id: str,
    log_path: str,
    key_path: str,
    policies: tuple[str, ...],
    signers_path: str,
    signer_id: str,
    signing_key: str,
    role: str | None,
    passphrase_file: str | None,
    now: str | None,
    fmt: str,
    **terms: Any,
) -> None:
    oversight, log = _oversight(log_path, key_path, policies, signers_path)
    try:
        item = _get(oversight.reviews, review_id)
        who = _identity(oversight.signers, signer_id, role, signing_key, passphrase_file)
        at = _now(now)
        if action == "approve":
            result = oversight.approve(item.id, who, at, terms.get("comment"))
        elif action == "reject":
            result = oversight.reject(item.id, who, at, terms["reason"])
        else:
            result = oversight.override(
                item.id, who, at, terms["rule"], terms["justification"], terms["expires_at"]
            )
    except ReviewError as exc:
        raise CliError(str(exc)) from None
    finally:
        oversight.reviews.close()
        log.close()
    _report(result, fmt)


@review_group.command("approve")
@click.argument("review_id")
@_acting
@click.option("--comment", metavar="TEXT", help="Remark recorded with the signature.")
@no_color_option
def approve_cmd(review_id: str, comment: str | None, **opts: Any) -> None:
    """Sign an approval for a review item, then judge the waiting request again."""
    _act("approve", review_id, **opts, comment=comment)


@review_group.command("reject")
@click.argument("review_id")
@_acting
@click.option("--reason", required=True, metavar="TEXT", help="Why (required for a rejection).")
@no_color_option
def reject_cmd(review_id: str, reason: str, **opts: Any) -> None:
    """Sign a rejection; a rejection by a required role blocks release."""
    _act("reject", review_id, **opts, reason=reason)


@review_group.command("override")
@click.argument("review_id")
@_acting
@click.option("--rule", "rule", required=True, metavar="RULE", help="Qualified soft rule id.")
@click.option("--justification", required=True, metavar="TEXT")
@click.option("--expires-at", "expires_at", required=True, metavar="TIMESTAMP")
@no_color_option
def override_cmd(
    review_id: str, rule: str, justification: str, expires_at: str, **opts: Any
) -> None:
    """Sign an override of a soft rule's failure (authorised roles only, justified, expiring)."""
    expiry = parse_timestamp(expires_at, "--expires-at")
    _act("override", review_id, **opts, rule=rule, justification=justification, expires_at=expiry)


@review_group.command("drift")
@click.argument("model_version")
@_acting
@click.option("--monitor", required=True, metavar="NAME", help="Monitor whose breach is answered.")
@click.option("--feature", default="*", show_default=True)
@click.option("--metric", default="*", show_default=True)
@click.option("--decision", "decision", type=click.Choice(["accept", "retrain"]), required=True)
@click.option("--justification", required=True, metavar="TEXT")
@click.option("--expires-at", "expires_at", metavar="TIMESTAMP", help="Acceptance lapses here.")
@no_color_option
def drift_cmd(
    model_version: str,
    monitor: str,
    feature: str,
    metric: str,
    decision: str,
    justification: str,
    expires_at: str | None,
    log_path: str,
    key_path: str,
    policies: tuple[str, ...],
    signers_path: str,
    signer_id: str,
    signing_key: str,
    role: str | None,
    passphrase_file: str | None,
    now: str | None,
    fmt: str,
) -> None:
    """Record a signed drift response: accept a breach as acceptable variance (justified,
    expiring) or require retraining."""
    expiry = None if expires_at is None else parse_timestamp(expires_at, "--expires-at")
    oversight, log = _oversight(log_path, key_path, policies, signers_path)
    try:
        who = _identity(oversight.signers, signer_id, role, signing_key, passphrase_file)
        result = oversight.respond_to_drift(
            model_version,
            who,
            _now(now),
            monitor=monitor,
            feature=feature,
            metric=metric,
            decision=decision,
            justification=justification,
            expires_at=expiry,
        )
    except ReviewError as exc:
        raise CliError(str(exc)) from None
    finally:
        oversight.reviews.close()
        log.close()
    if fmt == "json":
        click.echo(result.to_json().decode("utf-8"))
    else:
        click.echo(_decision_line("drift response", result))
    if result.outcome is Outcome.DENY:
        raise SystemExit(1)


@review_group.command("escalate")
@_LOG
@click.option("--key", "key_path", required=True, metavar="KEYFILE", help="Log key.")
@click.option("--policies", "policies", required=True, multiple=True, metavar="PATH")
@click.option("--signers", "signers_path", metavar="FILE", help="Signer registry.")
@_NOW
@_FORMAT
@no_color_option
def escalate_cmd(
    log_path: str,
    key_path: str,
    policies: tuple[str, ...],
    signers_path: str | None,
    now: str | None,
    fmt: str,
) -> None:
    """Escalate every open review past its deadline (once): a `review.escalated` event,
    judged and logged. Run it on a schedule. Exit 1 when anything was escalated."""
    oversight, log = _oversight(log_path, key_path, policies, signers_path)
    try:
        escalated = oversight.escalate(_now(now))
    finally:
        oversight.reviews.close()
        log.close()
    if fmt == "json":
        out = [
            {"review": i.to_dict(), "decision": None if d is None else d.to_dict()}
            for i, d in escalated
        ]
        click.echo(json.dumps(out, indent=2))
    else:
        for item, d in escalated:
            outcome = "" if d is None else f": {d.outcome.value}"
            click.echo(f"escalated {item.id} ({item.rule} on {item.subject_id}){outcome}")
        if not escalated:
            settings().note("nothing overdue")
    if escalated:
        raise SystemExit(1)


@review_group.command("verify")
@_LOG
@click.option(
    "--signers", "signers_path", required=True, metavar="FILE", help="Signer registry to trust."
)
@_FORMAT
@no_color_option
def verify_cmd(log_path: str, signers_path: str, fmt: str) -> None:
    """Verify every electronic signature in the log again against a registry you hold:
    record digests recomputed from the logged history, Ed25519 checked, key and role as of
    the signing time. Exit 1 when a logged status does not reproduce."""
    registry = load_signers(signers_path)
    assert registry is not None
    try:
        log = TransparencyLog.open(_existing(log_path))
    except LogError as exc:
        raise CliError(str(exc)) from None
    with log:
        report = reverify(log, registry)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
        click.echo(f"{report.signatures} signatures: {counts or 'none'}")
        for m in report.mismatches:
            why = f" ({m.problem})" if m.problem else ""
            click.echo(f"MISMATCH leaf {m.index} {m.event_id}: logged {m.logged}, now {m.now}{why}")
    if not report.ok:
        raise SystemExit(1)
