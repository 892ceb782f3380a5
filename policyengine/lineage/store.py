"""The lineage store: nodes and downstream edges, each stamped with the event that made it.

`LineageStore` is the interface queries use, so a server database can replace SQLite later.
`SQLiteLineageStore` keeps everything in one SQLite file (WAL, `synchronous=FULL`, as the
decision log does); the file may be the decision log's own, because every table here is
prefixed `lineage_`. Recording is idempotent per event id (a ledger of recorded event ids and
content digests), so a stream can be replayed into the store any number of times.

Nodes and edges use integer surrogate ids internally (`nid`), which keeps the edge table and
its indexes small and makes traversals integer index look-ups; the view `lineage_edge_view`
shows edges by `(src_kind, src_id, dst_kind, dst_id)` for anyone reading it with plain SQL.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from policyengine.events.pseudonym import carries_identifiers
from policyengine.lineage._time import db_time, from_db_time
from policyengine.lineage.edges import (
    EXCLUSIVE_RELATIONS,
    LineageDelta,
    NodeDelta,
    NodeKey,
    lineage_of,
)
from policyengine.lineage.errors import LineageError, UnknownNodeError

__all__ = [
    "FORMAT",
    "STOP_KINDS",
    "BulkEdge",
    "BulkNode",
    "Direction",
    "Edge",
    "LineageStore",
    "Node",
    "OnConflict",
    "Reach",
    "RecordResult",
    "SQLiteLineageStore",
]

FORMAT = "policyengine-lineage/1"

Direction = Literal["upstream", "downstream"]
OnConflict = Literal["raise", "skip"]

STOP_KINDS = frozenset({"endpoint"})
"""Traversals reach these nodes but do not continue through them (unless they are the start):
an endpoint is shared by every version ever deployed to it and every batch scored through
it, so passing through would mix unrelated lineages (a batch of version B would appear
downstream of version A)."""

_LOG_FORMAT_PREFIX = "policyengine-log/"  # the decision log's `meta.format` (log/sqlite.py)
_CHUNK = 5000  # ids per `IN (...)`; well under SQLite's 32,766 variables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lineage_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lineage_events(
  event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, time TEXT NOT NULL, digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lineage_nodes(
  nid INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT,
  attrs TEXT NOT NULL DEFAULT '{}',
  attr_stamps TEXT NOT NULL DEFAULT '{}',
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  updated_at TEXT,
  registered INTEGER NOT NULL DEFAULT 0,
  UNIQUE(kind, id)
);
CREATE INDEX IF NOT EXISTS lineage_nodes_by_id ON lineage_nodes(id);
CREATE INDEX IF NOT EXISTS lineage_nodes_by_name ON lineage_nodes(name);
CREATE TABLE IF NOT EXISTS lineage_edges(
  eid INTEGER PRIMARY KEY,
  src INTEGER NOT NULL REFERENCES lineage_nodes(nid),
  dst INTEGER NOT NULL REFERENCES lineage_nodes(nid),
  relation TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  time TEXT NOT NULL,
  valid_to TEXT
);
CREATE INDEX IF NOT EXISTS lineage_edges_out ON lineage_edges(src, dst, relation, time, valid_to);
CREATE INDEX IF NOT EXISTS lineage_edges_in ON lineage_edges(dst, src, time, valid_to);
CREATE VIEW IF NOT EXISTS lineage_edge_view AS
  SELECT s.kind AS src_kind, s.id AS src_id, d.kind AS dst_kind, d.id AS dst_id,
         e.relation, e.event_id, e.event_type, e.time, e.valid_to
  FROM lineage_edges e JOIN lineage_nodes s ON s.nid = e.src JOIN lineage_nodes d ON d.nid = e.dst
"""


# ----------------------------------------------------------------- what the store returns


class Node(NamedTuple):
    """A node as stored: attributes are the latest stated (by event time), not historical.

    A named tuple rather than a dataclass: traces build tens of thousands of them, and a
    frozen dataclass's `__init__` costs several times more.
    """

    key: NodeKey
    name: str | None
    attrs: Mapping[str, Any]
    first_seen: datetime
    """Time of the earliest event that mentions the node."""
    last_seen: datetime
    """Time of the latest event that mentions the node."""
    updated_at: datetime | None
    """Time of the latest event that stated its attributes (`None`: only ever referenced)."""
    registered: bool
    """Whether an event described the node itself (see `edges.DECLARING_EVENTS`)."""

    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def id(self) -> str:
        return self.key.id


class Edge(NamedTuple):
    """`src → dst` (downstream), stamped with the event that created it."""

    src: NodeKey
    dst: NodeKey
    relation: str
    event_id: str
    event_type: str
    time: datetime
    valid_to: datetime | None = None
    """For exclusive relations (`served_by`): when a later edge superseded this one."""

    def in_force(self, at: datetime) -> bool:
        """Whether the edge existed at `at` and had not been superseded yet."""
        return self.time <= at and (self.valid_to is None or at < self.valid_to)

    def sort_key(self) -> tuple[str, str, str, datetime, str]:
        return (str(self.src), str(self.dst), self.relation, self.time, self.event_id)


@dataclass(frozen=True, slots=True)
class Reach:
    """What a traversal reached: nodes (the start included) and the edges it followed."""

    nodes: Mapping[NodeKey, Node]
    edges: Sequence[Edge]


@dataclass(slots=True)
class RecordResult:
    """What recording a batch of events did; `+=` adds the result of the next batch (positions
    then count from the start of the first)."""

    recorded: int = 0
    """Events seen for the first time."""
    duplicates: int = 0
    """Events already recorded with the same content (nothing added)."""
    conflicts: list[str] = field(default_factory=list)
    """Ids of events skipped because an event with that id but other content was recorded."""
    conflict_positions: list[int] = field(default_factory=list)
    """Where each conflict was in the input (0-based), so callers can point at its line."""
    nodes_added: int = 0
    edges_added: int = 0

    def __iadd__(self, other: RecordResult) -> RecordResult:
        self.recorded += other.recorded
        self.duplicates += other.duplicates
        offset = self.recorded + self.duplicates + len(self.conflicts)
        self.conflict_positions += [offset + p for p in other.conflict_positions]
        self.conflicts += other.conflicts
        self.nodes_added += other.nodes_added
        self.edges_added += other.edges_added
        return self


@dataclass(frozen=True, slots=True)
class BulkNode:
    """A node for `bulk_load` (synthetic data, migrations): no event ledger involved."""

    key: NodeKey
    time: datetime
    name: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    registered: bool = True


@dataclass(frozen=True, slots=True)
class BulkEdge:
    src: NodeKey
    dst: NodeKey
    relation: str
    event_id: str
    event_type: str
    time: datetime


# ----------------------------------------------------------------- the interface


class LineageStore(Protocol):
    """Where lineage lives; the queries in `policyengine.lineage.query` need only this."""

    def record(
        self, event: Mapping[str, Any], *, on_conflict: OnConflict = "raise"
    ) -> RecordResult:
        """Add one validated event's lineage (idempotent per event id)."""
        ...

    def record_many(
        self, events: Iterable[Mapping[str, Any]], *, on_conflict: OnConflict = "raise"
    ) -> RecordResult:
        """Add many events' lineage in one transaction (all or nothing)."""
        ...

    def node(self, key: NodeKey) -> Node | None: ...

    def nodes_with_id(self, id: str) -> list[Node]:
        """Nodes of any kind with this id."""
        ...

    def nodes_named(self, name: str) -> list[Node]: ...

    def suggest(self, text: str, *, kind: str | None = None, limit: int = 3) -> list[str]:
        """Close `kind:id`s and names, for "did you mean" hints."""
        ...

    def edges(
        self,
        *,
        src: NodeKey | None = None,
        dst: NodeKey | None = None,
        relation: str | None = None,
    ) -> list[Edge]: ...

    def reach(
        self,
        start: NodeKey,
        direction: Direction,
        *,
        at: datetime | None = None,
        stop_kinds: frozenset[str] = STOP_KINDS,
    ) -> Reach:
        """Everything reachable from `start` against (`upstream`) or along the edges."""
        ...

    def close(self) -> None: ...


# ----------------------------------------------------------------- SQLite


def _digest(event: Mapping[str, Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return db_time(value)
        raise TypeError(f"cannot digest a `{type(value).__name__}`")

    text = json.dumps(event, sort_keys=True, separators=(",", ":"), default=default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _attrs_json(attrs: Mapping[str, Any]) -> str:
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_NODE_COLS = "nid, kind, id, name, attrs, first_seen, last_seen, updated_at, registered"
_EDGE_COLS = "e.src, e.dst, e.relation, e.event_id, e.event_type, e.time, e.valid_to"


def _node_from(row: Sequence[Any]) -> Node:
    return Node(
        NodeKey(row[1], row[2]),
        row[3],
        json.loads(row[4]),
        from_db_time(row[5]),
        from_db_time(row[6]),
        from_db_time(row[7]) if row[7] is not None else None,
        bool(row[8]),
    )


class SQLiteLineageStore:
    """`LineageStore` over one SQLite file. Thread-safe (one connection, one lock)."""

    def __init__(self, path: str | Path, *, create: bool = False, busy_timeout_s: float = 60.0):
        """Open the store at `path`; `create` makes it (or adds its tables to a decision log).

        `":memory:"` gives a private in-memory store (tests, one-off analyses).
        """
        self.path = str(path)
        memory = self.path == ":memory:"
        p = Path(path)
        if not memory and p.is_dir():
            raise LineageError(f"`{self.path}` is a directory, not a lineage store")
        if not memory and not create and not p.exists():
            raise LineageError(
                f"no lineage store at `{self.path}`",
                f"`policyengine lineage record --store {self.path} EVENTS.jsonl` creates one",
            )
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
        except sqlite3.DatabaseError as exc:
            raise LineageError(f"`{self.path}` is not a lineage store: {exc}") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            # Refuse a foreign file before switching to WAL, which would rewrite its header.
            fresh = self._check_file(create or memory)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal" and not memory:
                raise LineageError(f"cannot put `{self.path}` in WAL mode (got `{mode}`)")
            self._db.execute("PRAGMA synchronous=FULL")
            # Traversals touch pages all over the file: map it rather than read() each page.
            self._db.execute(f"PRAGMA mmap_size={1 << 30}")
            self._db.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB of page cache
            if fresh:
                self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LineageError(f"`{self.path}` is not a lineage store: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _check_file(self, create: bool) -> bool:
        """Raise unless the file is a lineage store (or may become one); True if it must."""
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "lineage_meta" in tables:
            row = self._db.execute("SELECT value FROM lineage_meta WHERE key='format'").fetchone()
            if row is None or row[0] != FORMAT:
                found = row[0] if row else "none"
                raise LineageError(
                    f"`{self.path}` is not a {FORMAT} lineage store (format `{found}`)"
                )
            return False
        if tables and not self._is_decision_log(tables):
            raise LineageError(
                f"`{self.path}` is an SQLite database but not a lineage store",
                "use a new file or the decision log's file",
            )
        if not create:
            what = "the decision log" if tables else "the file"
            raise LineageError(
                f"`{self.path}` holds no lineage store",
                f"`policyengine lineage record --store {self.path} EVENTS.jsonl` adds one to "
                f"{what}",
            )
        return True

    def _is_decision_log(self, tables: set[str]) -> bool:
        # Recognised by its format marker rather than its table list, which may grow.
        if "meta" not in tables:
            return False
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        except sqlite3.OperationalError:  # a foreign table that happens to be called `meta`
            return False
        return row is not None and str(row[0]).startswith(_LOG_FORMAT_PREFIX)

    def _init_schema(self) -> None:
        with self._write():
            # One statement at a time: `executescript` would COMMIT the open transaction.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT OR IGNORE INTO lineage_meta VALUES('format', ?)", (FORMAT,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteLineageStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            with self._write():
                yield
        except sqlite3.DatabaseError as exc:  # locked, read-only, disk full
            raise LineageError(f"cannot write to `{self.path}`: {exc}") from None

    # ------------------------------------------------------------------ recording

    def record(
        self, event: Mapping[str, Any], *, on_conflict: OnConflict = "raise"
    ) -> RecordResult:
        return self.record_many([event], on_conflict=on_conflict)

    def record_many(
        self, events: Iterable[Mapping[str, Any]], *, on_conflict: OnConflict = "raise"
    ) -> RecordResult:
        """Record validated events in one transaction.

        An event id already recorded with the same content adds nothing; with different
        content it is a conflict: `on_conflict="raise"` rolls the batch back with a
        `LineageError`, `"skip"` leaves that event out and lists it in the result.
        """
        if on_conflict not in ("raise", "skip"):
            raise ValueError("on_conflict must be `raise` or `skip`")
        result = RecordResult()
        exclusive: set[tuple[int, str]] = set()
        with self._writing():
            for position, event in enumerate(events):
                if carries_identifiers(event):
                    raise LineageError(
                        f"event `{event['id']}` carries raw patient identifiers; pseudonymise"
                        " it before recording its lineage",
                        "pass --pseudonym-key (made by `policyengine keys pseudonym`)",
                    )
                digest = _digest(event)
                row = self._db.execute(
                    "SELECT digest FROM lineage_events WHERE event_id=?", (event["id"],)
                ).fetchone()
                if row is not None:
                    if row[0] == digest:
                        result.duplicates += 1
                        continue
                    if on_conflict == "raise":
                        raise LineageError(
                            f"event `{event['id']}` was already recorded with different content",
                            "event ids must be unique; give the corrected event a new id",
                        )
                    result.conflicts.append(event["id"])
                    result.conflict_positions.append(position)
                    continue
                self._apply(lineage_of(event), result, exclusive)
                self._db.execute(
                    "INSERT INTO lineage_events VALUES(?,?,?,?)",
                    (event["id"], event["type"], db_time(event["time"]), digest),
                )
                result.recorded += 1
            for dst, relation in exclusive:
                self._supersede(dst, relation)
        return result

    def _apply(
        self, delta: LineageDelta, result: RecordResult, exclusive: set[tuple[int, str]]
    ) -> None:
        t = db_time(delta.time)
        nids = {
            node.key: self._upsert_node(node, t, delta.event_id, result) for node in delta.nodes
        }
        for edge in delta.edges:
            src, dst = nids[edge.src], nids[edge.dst]
            stamp = (delta.event_id, delta.event_type, t)
            if edge.exclusive:
                exclusive.add((dst, edge.relation))
            else:
                row = self._db.execute(
                    "SELECT eid, time, event_id FROM lineage_edges"
                    " WHERE src=? AND dst=? AND relation=?",
                    (src, dst, edge.relation),
                ).fetchone()
                if row is not None:
                    # The earliest claim created the edge, whatever order events arrive in.
                    if (t, delta.event_id) < (row[1], row[2]):
                        self._db.execute(
                            "UPDATE lineage_edges SET event_id=?, event_type=?, time=? WHERE eid=?",
                            (*stamp, row[0]),
                        )
                    continue
            self._db.execute(
                "INSERT INTO lineage_edges(src, dst, relation, event_id, event_type, time)"
                " VALUES(?,?,?,?,?,?)",
                (src, dst, edge.relation, *stamp),
            )
            result.edges_added += 1

    def _upsert_node(self, node: NodeDelta, t: str, event_id: str, result: RecordResult) -> int:
        """Insert or merge one node. Each attribute keeps the value of the latest event that
        stated it, by (time, event id), whatever order events are recorded in."""
        row = self._db.execute(
            "SELECT nid, attrs, attr_stamps, first_seen, last_seen, registered"
            " FROM lineage_nodes WHERE kind=? AND id=?",
            tuple(node.key),
        ).fetchone()
        stated = dict(node.attrs)
        if node.name is not None:
            stated["name"] = node.name
        # Fixed-width time first, so comparing these strings compares (time, event id).
        stamp = f"{t}|{event_id}"
        if row is None:
            name = stated.get("name")
            cur = self._db.execute(
                "INSERT INTO lineage_nodes(kind, id, name, attrs, attr_stamps, first_seen,"
                " last_seen, updated_at, registered) VALUES(?,?,?,?,?,?,?,?,?)",
                (
                    node.key.kind,
                    node.key.id,
                    name if isinstance(name, str) else None,
                    _attrs_json(stated),
                    _attrs_json(dict.fromkeys(stated, stamp)),
                    t,
                    t,
                    t if stated else None,
                    int(node.registered),
                ),
            )
            result.nodes_added += 1
            assert cur.lastrowid is not None
            return cur.lastrowid
        nid, attrs_text, stamps_text, first, last, registered = row
        attrs, stamps = json.loads(attrs_text), json.loads(stamps_text)
        for key, value in stated.items():
            if key not in stamps or stamp >= stamps[key]:
                attrs[key], stamps[key] = value, stamp
        name = attrs.get("name")
        self._db.execute(
            "UPDATE lineage_nodes SET name=?, attrs=?, attr_stamps=?, first_seen=?, last_seen=?,"
            " updated_at=?, registered=? WHERE nid=?",
            (
                name if isinstance(name, str) else None,
                _attrs_json(attrs),
                _attrs_json(stamps),
                min(first, t),
                max(last, t),
                max(stamps.values())[: len(t)] if stamps else None,
                int(bool(registered) or node.registered),
                nid,
            ),
        )
        return int(nid)

    def _supersede(self, dst: int, relation: str) -> None:
        """Each exclusive edge into `dst` ends when the next one (by time, event id) starts."""
        self._db.execute(
            "UPDATE lineage_edges SET valid_to = nxt.next_time FROM ("
            "  SELECT eid, LEAD(time) OVER (ORDER BY time, event_id) AS next_time"
            "  FROM lineage_edges WHERE dst=? AND relation=?"
            ") AS nxt WHERE lineage_edges.eid = nxt.eid"
            " AND lineage_edges.valid_to IS NOT nxt.next_time",
            (dst, relation),
        )

    def bulk_load(self, nodes: Iterable[BulkNode], edges: Iterable[BulkEdge]) -> None:
        """Insert prepared nodes and edges in one transaction, skipping the event ledger.

        For synthetic benchmarks and migrations: no idempotency, no attribute merging
        (a node already present keeps its row). Exclusive relations are re-sequenced after.
        """
        with self._writing():
            self._db.executemany(
                "INSERT INTO lineage_nodes(kind, id, name, attrs, first_seen, last_seen,"
                " updated_at, registered) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    (
                        n.key.kind,
                        n.key.id,
                        n.name,
                        _attrs_json(n.attrs),
                        db_time(n.time),
                        db_time(n.time),
                        db_time(n.time),
                        int(n.registered),
                    )
                    for n in nodes
                ),
            )
            nids = {
                (k, i): nid
                for nid, k, i in self._db.execute("SELECT nid, kind, id FROM lineage_nodes")
            }

            def rows() -> Iterator[tuple[Any, ...]]:
                for e in edges:
                    try:
                        src, dst = nids[(e.src.kind, e.src.id)], nids[(e.dst.kind, e.dst.id)]
                    except KeyError as exc:
                        raise LineageError(f"bulk edge refers to unknown node {exc}") from None
                    yield (src, dst, e.relation, e.event_id, e.event_type, db_time(e.time))

            self._db.executemany(
                "INSERT INTO lineage_edges(src, dst, relation, event_id, event_type, time)"
                " VALUES(?,?,?,?,?,?)",
                rows(),
            )
            for relation in EXCLUSIVE_RELATIONS:
                self._db.execute(
                    "UPDATE lineage_edges SET valid_to = nxt.next_time FROM ("
                    "  SELECT eid, LEAD(time) OVER (PARTITION BY dst ORDER BY time, event_id)"
                    "  AS next_time FROM lineage_edges WHERE relation=?"
                    ") AS nxt WHERE lineage_edges.eid = nxt.eid",
                    (relation,),
                )

    # ------------------------------------------------------------------ reads

    def counts(self) -> dict[str, int]:
        """Rows per table: `events`, `nodes`, `edges`."""
        with self._lock:
            return {
                name: int(self._db.execute(f"SELECT count(*) FROM lineage_{name}").fetchone()[0])
                for name in ("events", "nodes", "edges")
            }

    def node(self, key: NodeKey) -> Node | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_NODE_COLS} FROM lineage_nodes WHERE kind=? AND id=?", tuple(key)
            ).fetchone()
        return _node_from(row) if row is not None else None

    def nodes_with_id(self, id: str) -> list[Node]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_NODE_COLS} FROM lineage_nodes WHERE id=? ORDER BY kind", (id,)
            ).fetchall()
        return [_node_from(r) for r in rows]

    def nodes_named(self, name: str) -> list[Node]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_NODE_COLS} FROM lineage_nodes WHERE name=? ORDER BY kind, id", (name,)
            ).fetchall()
        return [_node_from(r) for r in rows]

    def suggest(self, text: str, *, kind: str | None = None, limit: int = 3) -> list[str]:
        # Candidates sharing a short prefix come from the indexes, so a large store is not
        # scanned; a small one is compared whole (typos in the first letters happen too).
        prefix = text[:3]
        pool: dict[str, str] = {}
        with self._lock:
            total = self._db.execute("SELECT count(*) FROM lineage_nodes").fetchone()[0]
            if total <= 20_000:
                rows = self._db.execute("SELECT kind, id, name FROM lineage_nodes").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT kind, id, name FROM lineage_nodes WHERE id >= ? AND id < ?"
                    " UNION SELECT kind, id, name FROM lineage_nodes WHERE name >= ? AND name < ?"
                    " LIMIT 5000",
                    (prefix, prefix + "\U0010ffff", prefix, prefix + "\U0010ffff"),
                ).fetchall()
        for k, i, name in rows:
            if kind is not None and k != kind:
                continue
            pool.setdefault(i, f"{k}:{i}")
            pool.setdefault(f"{k}:{i}", f"{k}:{i}")
            if name:
                pool.setdefault(name, name)
        close = difflib.get_close_matches(text, list(pool), n=limit * 2, cutoff=0.6)
        return list(dict.fromkeys(pool[c] for c in close))[:limit]

    def edges(
        self,
        *,
        src: NodeKey | None = None,
        dst: NodeKey | None = None,
        relation: str | None = None,
    ) -> list[Edge]:
        where: list[str] = []
        params: list[Any] = []
        for col, key in (("src", src), ("dst", dst)):
            if key is not None:
                nid = self._nid(key)
                if nid is None:
                    return []
                where.append(f"e.{col}=?")
                params.append(nid)
        if relation is not None:
            where.append("e.relation=?")
            params.append(relation)
        sql = f"SELECT {_EDGE_COLS} FROM lineage_edges e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            keys = self._keys({r[0] for r in rows} | {r[1] for r in rows})
        return sorted((self._edge_from(r, keys) for r in rows), key=Edge.sort_key)

    def _nid(self, key: NodeKey) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT nid FROM lineage_nodes WHERE kind=? AND id=?", tuple(key)
            ).fetchone()
        return None if row is None else int(row[0])

    def _keys(self, nids: Iterable[int]) -> dict[int, NodeKey]:
        out: dict[int, NodeKey] = {}
        for chunk in _chunks(list(nids)):
            marks = ",".join("?" * len(chunk))
            for nid, kind, id_ in self._db.execute(
                f"SELECT nid, kind, id FROM lineage_nodes WHERE nid IN ({marks})", chunk
            ):
                out[nid] = NodeKey(kind, id_)
        return out

    @staticmethod
    def _edge_from(row: Sequence[Any], keys: Mapping[int, NodeKey]) -> Edge:
        return Edge(
            keys[row[0]],
            keys[row[1]],
            row[2],
            row[3],
            row[4],
            from_db_time(row[5]),
            from_db_time(row[6]) if row[6] is not None else None,
        )

    def reach(
        self,
        start: NodeKey,
        direction: Direction,
        *,
        at: datetime | None = None,
        stop_kinds: frozenset[str] = STOP_KINDS,
    ) -> Reach:
        """Breadth-first, one query per frontier chunk, answered from the covering edge
        indexes alone; edge and node rows are fetched once, at the end, for what was reached.
        """
        if direction not in ("upstream", "downstream"):
            raise ValueError(f"direction must be `upstream` or `downstream`, not `{direction}`")
        near, far = ("dst", "src") if direction == "upstream" else ("src", "dst")
        when: tuple[str, ...] = ()
        clause = ""
        if at is not None:
            t = db_time(at)
            when = (t, t)
            clause = " AND time <= ? AND (valid_to IS NULL OR valid_to > ?)"
        stops = tuple(sorted(stop_kinds))
        with self._lock:
            root = self._nid(start)
            if root is None:
                raise UnknownNodeError(str(start), self.suggest(str(start)))
            seen = {root}
            frontier = [root]
            eids: list[int] = []
            while frontier:
                found: list[int] = []
                for chunk in _chunks(frontier):
                    marks = ",".join("?" * len(chunk))
                    for eid, other in self._db.execute(
                        f"SELECT eid, {far} FROM lineage_edges WHERE {near} IN ({marks}){clause}",
                        (*chunk, *when),
                    ):
                        eids.append(eid)
                        if other not in seen:
                            seen.add(other)
                            found.append(other)
                if found and stops:
                    stopped: set[int] = set()
                    kinds = ",".join("?" * len(stops))
                    for chunk in _chunks(found):
                        marks = ",".join("?" * len(chunk))
                        stopped.update(
                            r[0]
                            for r in self._db.execute(
                                f"SELECT nid FROM lineage_nodes WHERE nid IN ({marks})"
                                f" AND kind IN ({kinds})",
                                (*chunk, *stops),
                            )
                        )
                    found = [n for n in found if n not in stopped]
                frontier = found
            keys: dict[int, NodeKey] = {}
            nodes: list[Node] = []
            for chunk in _chunks(list(seen)):
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT {_NODE_COLS} FROM lineage_nodes WHERE nid IN ({marks})", chunk
                ):
                    node = _node_from(row)
                    keys[row[0]] = node.key
                    nodes.append(node)
            edges: list[Edge] = []
            for chunk in _chunks(eids):
                marks = ",".join("?" * len(chunk))
                edges += (
                    self._edge_from(r, keys)
                    for r in self._db.execute(
                        f"SELECT {_EDGE_COLS} FROM lineage_edges e WHERE eid IN ({marks})", chunk
                    )
                )
        return Reach(nodes={n.key: n for n in nodes}, edges=edges)
