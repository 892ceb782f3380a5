"""The review store: items that wait for people (21 CFR 11.10(g); EU GMP Annex 11 §14).

A rule with `review by ROLES within D` that fails makes the decision `review_required` and
names the roles and deadline. Each such (subject, rule, pending event) opens one item here,
holding the pending event so it can be judged again once signatures arrive. Items move
`open` → `approved` | `rejected` | `overridden`, and an open item past its deadline is
marked `escalated` once (it stays open for signatures). Signatures are not stored here —
they are events in the signed decision log; this store keeps the index of which signature
events answered which item, so `review show` can list them.

Embedded SQLite; the tables (`review_*`) may share the decision log's file. Every change is
one transaction, and the history table is append-only (triggers), like the log.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from policyengine.canonical import dumps as canonical_dumps
from policyengine.runtime.decision import Decision
from policyengine.runtime.values import format_timestamp, to_jsonable

__all__ = [
    "REVIEW_STATUSES",
    "ReviewError",
    "ReviewItem",
    "ReviewSignature",
    "ReviewStatus",
    "ReviewStore",
    "review_id",
]

ReviewStatus = Literal["open", "approved", "rejected", "overridden"]
REVIEW_STATUSES: tuple[str, ...] = ("open", "approved", "rejected", "overridden")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_items (
    id TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    roles TEXT NOT NULL,
    within TEXT NOT NULL,
    deadline TEXT NOT NULL,
    message TEXT,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    escalated_at TEXT,
    pending_event TEXT NOT NULL,
    pending_event_id TEXT NOT NULL,
    decision_digest TEXT NOT NULL,
    rechecks INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS review_items_subject ON review_items (subject_kind, subject_id);
CREATE INDEX IF NOT EXISTS review_items_status ON review_items (status, deadline);
CREATE TABLE IF NOT EXISTS review_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    review_id TEXT NOT NULL,
    time TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    event_id TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS review_history_review ON review_history (review_id, seq);
CREATE TRIGGER IF NOT EXISTS review_history_no_update BEFORE UPDATE ON review_history
BEGIN SELECT RAISE(ABORT, 'review history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS review_history_no_delete BEFORE DELETE ON review_history
BEGIN SELECT RAISE(ABORT, 'review history is append-only'); END;
"""


class ReviewError(ValueError):
    """A review operation that cannot be done (unknown id, closed item, bad store)."""


def review_id(subject_kind: str, subject_id: str, rule: str, event_id: str) -> str:
    """Deterministic: the same pending event and rule always name the same item."""
    key = canonical_dumps([subject_kind, subject_id, rule, event_id])
    return "rv-" + hashlib.sha256(key).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ReviewSignature:
    """One entry of an item's history: opened, a signature, a recheck, an escalation."""

    time: str
    action: str
    actor: str
    event_id: str | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "action": self.action,
            "actor": self.actor,
            "event_id": self.event_id,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: str
    subject_kind: str
    subject_id: str
    rule: str
    roles: tuple[str, ...]
    within: str
    deadline: datetime
    message: str | None
    status: str
    opened_at: datetime
    closed_at: datetime | None
    escalated_at: datetime | None
    pending_event: dict[str, Any]
    decision_digest: str
    rechecks: int
    history: tuple[ReviewSignature, ...] = ()

    def overdue(self, now: datetime) -> bool:
        return self.status == "open" and now > self.deadline

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "subject": {"kind": self.subject_kind, "id": self.subject_id},
            "rule": self.rule,
            "roles": list(self.roles),
            "within": self.within,
            "deadline": format_timestamp(self.deadline),
            "message": self.message,
            "status": self.status,
            "opened_at": format_timestamp(self.opened_at),
            "closed_at": None if self.closed_at is None else format_timestamp(self.closed_at),
            "escalated_at": (
                None if self.escalated_at is None else format_timestamp(self.escalated_at)
            ),
            "pending_event": self.pending_event["id"],
            "decision_digest": self.decision_digest,
            "history": [h.to_dict() for h in self.history],
        }
        if now is not None:
            d["overdue"] = self.overdue(now)
        return d


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


class ReviewStore:
    """Review items in SQLite. Thread-safe (one connection, one lock); every write is one
    transaction, so a crash leaves the store as before or after the change, never between."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._write():
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        self._db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise ReviewError(f"`{self.path}` cannot hold a review store: {exc}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ----------------------------------------------------------------- writes

    def open_for(self, event: Mapping[str, Any], decision: Decision) -> list[str]:
        """Open one item per rule of `decision` that asks for review; returns the ids of
        items that were opened now (an item already open for the same event is kept)."""
        opened: list[str] = []
        reviews = decision.reviews
        if not reviews:
            return opened
        blob = canonical_dumps(to_jsonable(dict(event))).decode("utf-8")
        digest = "sha256:" + hashlib.sha256(decision.to_json()).hexdigest()
        when = format_timestamp(decision.evaluated_at)
        with self._lock, self._write() as db:
            for result in reviews:
                review = result.review or {}
                rid = review_id(
                    decision.subject_kind, decision.subject_id, result.rule, decision.event_id
                )
                cur = db.execute(
                    "INSERT OR IGNORE INTO review_items (id, subject_kind, subject_id, rule,"
                    " roles, within, deadline, message, status, opened_at, pending_event,"
                    " pending_event_id, decision_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        rid,
                        decision.subject_kind,
                        decision.subject_id,
                        result.rule,
                        json.dumps(list(review.get("roles", ()))),
                        str(review.get("within", "")),
                        format_timestamp(review["deadline"]),
                        result.message,
                        "open",
                        when,
                        blob,
                        decision.event_id,
                        digest,
                    ),
                )
                if cur.rowcount:
                    self._history(db, rid, when, "opened", "policyengine", decision.event_id, None)
                    opened.append(rid)
        return opened

    def note(
        self,
        rid: str,
        time: datetime,
        action: str,
        actor: str,
        event_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append a history entry (a signature, a recheck, an escalation)."""
        with self._lock, self._write() as db:
            self._require(db, rid)
            if action == "recheck":
                db.execute("UPDATE review_items SET rechecks = rechecks + 1 WHERE id = ?", (rid,))
            if action == "escalated":
                db.execute(
                    "UPDATE review_items SET escalated_at = ?"
                    " WHERE id = ? AND escalated_at IS NULL",
                    (format_timestamp(time), rid),
                )
            self._history(db, rid, format_timestamp(time), action, actor, event_id, detail)

    def close_item(
        self, rid: str, status: ReviewStatus, time: datetime, actor: str, event_id: str | None
    ) -> None:
        """Close an open item; closing twice is an error (the first decision stands)."""
        if status == "open":
            raise ReviewError("an item is closed as approved, rejected or overridden")
        with self._lock, self._write() as db:
            row = self._require(db, rid)
            if row[0] != "open":
                raise ReviewError(f"review `{rid}` is already {row[0]}")
            db.execute(
                "UPDATE review_items SET status = ?, closed_at = ? WHERE id = ?",
                (status, format_timestamp(time), rid),
            )
            self._history(db, rid, format_timestamp(time), status, actor, event_id, None)

    @staticmethod
    def _require(db: sqlite3.Connection, rid: str) -> tuple[Any, ...]:
        row = db.execute("SELECT status FROM review_items WHERE id = ?", (rid,)).fetchone()
        if row is None:
            raise ReviewError(f"no review `{rid}`")
        return tuple(row)

    @staticmethod
    def _history(
        db: sqlite3.Connection,
        rid: str,
        time: str,
        action: str,
        actor: str,
        event_id: str | None,
        detail: str | None,
    ) -> None:
        db.execute(
            "INSERT INTO review_history (review_id, time, action, actor, event_id, detail)"
            " VALUES (?,?,?,?,?,?)",
            (rid, time, action, actor, event_id, detail),
        )

    # ----------------------------------------------------------------- reads

    _COLUMNS = (
        "id, subject_kind, subject_id, rule, roles, within, deadline, message, status,"
        " opened_at, closed_at, escalated_at, pending_event, decision_digest, rechecks"
    )

    def get(self, rid: str) -> ReviewItem:
        """The item with id `rid`, or the only one whose id starts with it (ids are long)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._COLUMNS} FROM review_items WHERE id = ? OR id LIKE ?"
                " ORDER BY id = ? DESC LIMIT 5",
                (rid, rid.replace("%", "").replace("_", "") + "%", rid),
            ).fetchall()
            if rows and (rows[0][0] == rid or len(rows) == 1):
                return self._item(rows[0])
        known = ", ".join(r[0] for r in rows)
        hint = f"; did you mean one of {known}?" if rows else ""
        raise ReviewError(f"no review `{rid}`{hint}")

    def items(
        self,
        status: str | None = None,
        subject: tuple[str, str] | None = None,
    ) -> list[ReviewItem]:
        """Items by opening time; `status` filters (`open`, `approved`, …)."""
        sql = f"SELECT {self._COLUMNS} FROM review_items"
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if subject is not None:
            where.append("subject_kind = ? AND subject_id = ?")
            args += list(subject)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_at, id"
        with self._lock:
            return [self._item(row) for row in self._db.execute(sql, args).fetchall()]

    def overdue(self, now: datetime) -> list[ReviewItem]:
        return [i for i in self.items("open") if i.overdue(now)]

    def counts(self, now: datetime) -> dict[str, int]:
        """Open and overdue totals, for metrics."""
        items = self.items("open")
        return {"open": len(items), "overdue": sum(1 for i in items if i.overdue(now))}

    def _item(self, row: Sequence[Any]) -> ReviewItem:
        history = tuple(
            ReviewSignature(*h)
            for h in self._db.execute(
                "SELECT time, action, actor, event_id, detail FROM review_history"
                " WHERE review_id = ? ORDER BY seq",
                (row[0],),
            )
        )
        deadline = _ts(row[6])
        opened = _ts(row[9])
        assert deadline is not None and opened is not None
        return ReviewItem(
            id=row[0],
            subject_kind=row[1],
            subject_id=row[2],
            rule=row[3],
            roles=tuple(json.loads(row[4])),
            within=row[5],
            deadline=deadline,
            message=row[7],
            status=row[8],
            opened_at=opened,
            closed_at=_ts(row[10]),
            escalated_at=_ts(row[11]),
            pending_event=json.loads(row[12]),
            decision_digest=row[13],
            rechecks=int(row[14]),
            history=history,
        )
