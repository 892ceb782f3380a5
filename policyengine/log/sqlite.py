"""The embedded log store: one SQLite file in WAL mode.

Durability: `synchronous=FULL` makes every commit fsync the WAL, so a transaction that
returned from COMMIT survives `kill -9` and power loss; one that did not is rolled back on
the next open. Appenders in several processes are serialised by `BEGIN IMMEDIATE` (the
database's write lock) and each re-reads the tree size inside its transaction, so they never
interleave. Triggers refuse UPDATE and DELETE: the log is append-only even to careless SQL
(a determined attacker with file access can drop them, which is what `verify` catches).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from policyengine.log.errors import LogError
from policyengine.log.store import StoredCheckpoint, StoredCosignature

__all__ = ["FORMAT", "SQLiteStore"]

FORMAT = "policyengine-log/1"

#: Witness cosignatures (C2SP tlog-cosignature) beside the append-only checkpoint rows. Logs
#: made before cosigning existed lack the table; the first cosignature creates it.
_COSIGNATURES = """
CREATE TABLE IF NOT EXISTS cosignatures(
  size INTEGER NOT NULL, name TEXT NOT NULL, key_id INTEGER NOT NULL, line TEXT NOT NULL,
  PRIMARY KEY(size, name, key_id)
) WITHOUT ROWID;
"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leaves(idx INTEGER PRIMARY KEY, hash BLOB NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
  level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints(
  size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bundles(digest TEXT PRIMARY KEY, sources BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS record_keys(
  key TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY(key, idx)
) WITHOUT ROWID;
"""
    + _COSIGNATURES
)

_APPEND_ONLY = "the decision log is append-only"
#: Tables of other embedded stores that may share the log's file (the lineage and review
#: stores), and SQLite's own.
_SHARED_PREFIXES = ("lineage_", "review_", "sqlite_")


def _no_change(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END;"
        for op in ("UPDATE", "DELETE")
    ]


def _triggers() -> str:
    out = []
    for table in ("leaves", "nodes", "checkpoints", "bundles", "record_keys", "cosignatures"):
        out.extend(_no_change(table))
    out.append(
        "CREATE TRIGGER IF NOT EXISTS meta_no_delete BEFORE DELETE ON meta "
        f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END;"
    )
    return "\n".join(out)


class SQLiteStore:
    """`LogStore` over one SQLite database file. Thread-safe (one connection, one lock)."""

    def __init__(self, path: str | Path, *, create: bool = False, busy_timeout_s: float = 60.0):
        self.path = str(path)
        p = Path(path)
        if not create and not p.exists():
            raise LogError(
                f"no decision log at `{self.path}`"
                " (hint: `policyengine eval … --log FILE --key KEY` creates one)"
            )
        if p.exists() and p.is_dir():
            raise LogError(f"`{self.path}` is a directory, not a decision log file")
        if not create and p.is_file() and p.stat().st_size == 0:
            raise LogError(
                f"`{self.path}` is an empty file, not a decision log"
                " (hint: a command that writes, such as `eval --log`, initialises it)"
            )
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_s,
            )
        except sqlite3.DatabaseError as exc:
            raise LogError(f"`{self.path}` is not a decision log: {exc}") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            # Refuse a foreign file before switching to WAL, which would rewrite its header.
            self._existing_tables()
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise LogError(f"cannot put `{self.path}` in WAL mode (got `{mode}`)")
            self._db.execute("PRAGMA synchronous=FULL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LogError(f"`{self.path}` is not a decision log: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _existing_tables(self) -> set[str]:
        """The file's tables (read-only); raises when it holds something other than a log."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" in tables:
            fmt = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
            if fmt is None or fmt[0] != FORMAT:
                found = fmt[0] if fmt else "none"
                raise LogError(f"`{self.path}` is not a {FORMAT} decision log (format `{found}`)")
        elif {t for t in tables if not t.startswith(_SHARED_PREFIXES)}:
            raise LogError(f"`{self.path}` is an SQLite database but not a decision log")
        return tables

    def _init_schema(self) -> None:
        if "meta" in self._existing_tables():
            return
        with self._write():
            # One statement at a time: `executescript` would COMMIT the open transaction.
            for statement in _SCHEMA.split(";") + _triggers().split("\n"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES('format', ?)", (FORMAT,))

    # ------------------------------------------------------------------ transactions

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
    def append_txn(self) -> Iterator[_Txn]:
        try:
            with self._write():
                yield _Txn(self)
        except sqlite3.DatabaseError as exc:  # locked, read-only, or a clash with stray rows
            raise LogError(f"cannot write to `{self.path}`: {exc}") from None

    # ------------------------------------------------------------------ reads

    def size(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT max(idx) FROM leaves").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def subtree_root(self, level: int, index: int) -> bytes:
        with self._lock:
            if level == 0:
                row = self._db.execute("SELECT hash FROM leaves WHERE idx=?", (index,)).fetchone()
            else:
                row = self._db.execute(
                    "SELECT hash FROM nodes WHERE level=? AND idx=?", (level, index)
                ).fetchone()
        if row is None:
            raise LogError(f"`{self.path}` lacks the tree node at level {level}, index {index}")
        h: bytes = row[0]
        return h

    def leaf(self, index: int) -> tuple[bytes, bytes]:
        with self._lock:
            row = self._db.execute("SELECT hash, data FROM leaves WHERE idx=?", (index,)).fetchone()
        if row is None:
            raise LogError(f"no leaf {index} in `{self.path}` (it holds {self.size()})")
        return bytes(row[0]), bytes(row[1])

    def leaves(self, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        # Pages of rows so a long scan neither holds the lock nor a snapshot for its whole run.
        pos = start
        while pos < end:
            with self._lock:
                rows = self._db.execute(
                    "SELECT idx, hash, data FROM leaves"
                    " WHERE idx>=? AND idx<? ORDER BY idx LIMIT ?",
                    (pos, end, 8192),
                ).fetchall()
            if not rows:
                return
            yield from rows
            pos = rows[-1][0] + 1

    def nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        pos = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT idx, hash FROM nodes WHERE level=? AND idx>=? ORDER BY idx LIMIT ?",
                    (level, pos, 16384),
                ).fetchall()
            if not rows:
                return
            yield from rows
            pos = rows[-1][0] + 1

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._lock:
            rows = self._db.execute(
                "SELECT size, root, note FROM checkpoints ORDER BY size"
            ).fetchall()
        return [StoredCheckpoint(int(s), bytes(r), str(n)) for s, r, n in rows]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]))

    def checkpoint_at_or_after(self, size: int) -> StoredCheckpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, root, note FROM checkpoints WHERE size>=? ORDER BY size LIMIT 1",
                (size,),
            ).fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]))

    def cosignatures(self, size: int | None = None) -> list[StoredCosignature]:
        query = "SELECT size, name, key_id, line FROM cosignatures"
        args: tuple[int, ...] = ()
        if size is not None:
            query, args = query + " WHERE size=?", (size,)
        with self._lock:
            try:
                rows = self._db.execute(query + " ORDER BY size, name, key_id", args).fetchall()
            except sqlite3.OperationalError:
                if "cosignatures" in self._existing_tables():
                    raise
                return []  # a log from before witness cosigning: none stored
        return [StoredCosignature(int(s), str(n), int(k), str(ln)) for s, n, k, ln in rows]

    def get_bundle(self, digest: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sources FROM bundles WHERE digest=?", (digest,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def bundles(self) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT digest, sources FROM bundles ORDER BY digest"
            ).fetchall()
        for digest, blob in rows:
            yield str(digest), bytes(blob)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def find(self, key: str) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx FROM record_keys WHERE key=? ORDER BY idx", (key,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Txn:
    """The `AppendTxn` of `SQLiteStore`: runs on the store's connection inside BEGIN IMMEDIATE."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._db = store._db

    def size(self) -> int:
        return self._store.size()

    def subtree_root(self, level: int, index: int) -> bytes:
        return self._store.subtree_root(level, index)

    def write(
        self,
        start: int,
        leaves: Sequence[tuple[bytes, bytes]],
        nodes: Sequence[tuple[int, int, bytes]],
        keys: Sequence[tuple[str, int]] = (),
    ) -> None:
        self._db.executemany(
            "INSERT INTO leaves(idx, hash, data) VALUES(?,?,?)",
            ((start + i, h, d) for i, (h, d) in enumerate(leaves)),
        )
        self._db.executemany("INSERT INTO nodes(level, idx, hash) VALUES(?,?,?)", nodes)
        if keys:
            self._db.executemany("INSERT INTO record_keys(key, idx) VALUES(?,?)", keys)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        self._db.execute(
            "INSERT INTO checkpoints(size, root, note) VALUES(?,?,?)",
            (checkpoint.size, checkpoint.root, checkpoint.note),
        )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self._store.latest_checkpoint()

    def cosignatures(self, size: int | None = None) -> list[StoredCosignature]:
        return self._store.cosignatures(size)

    def add_cosignature(self, cosignature: StoredCosignature) -> bool:
        for statement in _COSIGNATURES.split(";") + _no_change("cosignatures"):
            if statement.strip():
                self._db.execute(statement)  # no-ops once the table exists
        cur = self._db.execute(
            "INSERT OR IGNORE INTO cosignatures(size, name, key_id, line) VALUES(?,?,?,?)",
            (cosignature.size, cosignature.name, cosignature.key_id, cosignature.line),
        )
        return cur.rowcount == 1

    def put_bundle(self, digest: str, blob: bytes) -> bool:
        cur = self._db.execute(
            "INSERT OR IGNORE INTO bundles(digest, sources) VALUES(?,?)", (digest, blob)
        )
        return cur.rowcount == 1

    def get_meta(self, key: str) -> str | None:
        return self._store.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES(?,?)", (key, value))
