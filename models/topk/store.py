"""The top-k store: one SQLite database (Python's ``sqlite3``) in the user cache directory.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`; another version is dropped and made
anew — it is a cache):

- ``scans(id, model_key, preprocess_key, folder, k, depth, model_name, complete, next_image,
  engines, owner, updated)``, unique on ``(model_key, preprocess_key, folder, k)``:
  one per model weights + layers, preprocessing, folder (absolute) and k (:mod:`.keys`).
- ``images(scan, id, path, size, mtime_ns, state, error)``: the folder's file list as last
  seen; ``path`` relative to the folder; ``state`` ``pending`` | ``done`` | ``unreadable``.
  A changed file (size or mtime) is a new row with a new id.
- ``layers(scan, id, name, channels, height, width, state)``: the conv layers in model order;
  ``state`` the layer's running top-``depth`` (``depth`` = 3k: the reserve that lets deleted
  files be taken out, :mod:`.running`) with its floors, as raw arrays, rewritten after every
  batch (a scan under way resumes from it).
- ``entries(scan, layer, channel, rank, image, value, y, x)``: one row per (layer, channel,
  rank) for the first ``k`` ranks, ``rank`` 0 the strongest, written from the states when a
  scan completes: what the view reads. The view ``top`` joins layer names and image paths.

Each call opens its own connection (a scan on a worker thread, the view reading on the GUI
thread, another process: all fine; WAL lets readers read while a scan writes).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.cache import ENV, cache_dir
from models.errors import ConvScopeError
from models.topk.running import LayerTopK

SCHEMA_VERSION = 3  # 3: a state holds its floor's image (ties rank by path)
DB_NAME = "topk.sqlite3"

_SCHEMA = """
CREATE TABLE scans (
    id INTEGER PRIMARY KEY, model_key TEXT NOT NULL, preprocess_key TEXT NOT NULL,
    folder TEXT NOT NULL, k INTEGER NOT NULL, depth INTEGER NOT NULL, model_name TEXT,
    complete INTEGER NOT NULL DEFAULT 0, next_image INTEGER NOT NULL DEFAULT 0,
    engines TEXT NOT NULL DEFAULT '', owner TEXT, updated REAL,
    UNIQUE (model_key, preprocess_key, folder, k));
CREATE TABLE images (
    scan INTEGER NOT NULL, id INTEGER NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, state TEXT NOT NULL, error TEXT,
    PRIMARY KEY (scan, id)) WITHOUT ROWID;
CREATE TABLE layers (
    scan INTEGER NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL, channels INTEGER NOT NULL,
    height INTEGER NOT NULL, width INTEGER NOT NULL, state BLOB,
    PRIMARY KEY (scan, id)) WITHOUT ROWID;
CREATE TABLE entries (
    scan INTEGER NOT NULL, layer INTEGER NOT NULL, channel INTEGER NOT NULL,
    rank INTEGER NOT NULL, image INTEGER NOT NULL, value REAL NOT NULL, y INTEGER NOT NULL,
    x INTEGER NOT NULL, PRIMARY KEY (scan, layer, channel, rank)) WITHOUT ROWID;
CREATE VIEW top AS
    SELECT s.folder, s.model_name, l.name AS layer, e.channel, e.rank, i.path AS image,
           e.value, e.y, e.x
    FROM entries e JOIN scans s ON s.id = e.scan
    JOIN layers l ON l.scan = e.scan AND l.id = e.layer
    JOIN images i ON i.scan = e.scan AND i.id = e.image;
"""


def _text(path: str) -> str | bytes:
    """A relative path as SQLite stores it: text, or the file system's bytes for a name that
    is not valid UTF-8 (Linux allows any bytes; Python hands them over as surrogates)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def _path(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


class StoreError(ConvScopeError):
    """The cache database cannot be opened or written (no space, no permission, not a
    folder, locked by another process for over a minute)."""


@dataclass(frozen=True)
class LayerRow:
    id: int
    name: str
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class ImageRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    state: str
    error: str | None


class Store:
    """The database at ``path`` (default: ``cache_dir() / "topk.sqlite3"``), created on first
    use. A file that is not a database of this schema is replaced: everything in it can be
    recomputed."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / DB_NAME
        self._ready = False

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection with the schema in place, in one transaction: committed on success,
        rolled back on an exception, closed after."""
        with self.session() as conn, self.transaction(conn):
            yield conn

    @contextlib.contextmanager
    def session(self) -> Iterator[sqlite3.Connection]:
        """A connection held open (a scan's, for all its batches: closing the last connection
        folds the whole write-ahead log into the database, 30 ms or more each time); use
        :meth:`transaction` around each write."""
        try:
            if not self._ready or not self.path.exists():  # first use, or the cache was cleared
                self._prepare()
            # a scan writes its checkpoints from its helper thread, one use at a time
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses no committed batch
            # each checkpoint rewrites the states (9 MB for EfficientNet-Lite0): fold them into
            # the database every 40 MB of log, not every 4 MB (half the writes)
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
        except (OSError, sqlite3.OperationalError) as exc:
            raise self._error(exc) from exc
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            with conn:
                yield conn
        except sqlite3.OperationalError as exc:  # full disk, read-only, locked too long
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> StoreError:
        blocker = self.not_a_folder()
        if blocker is not None:  # mkdir's "[Errno 17] File exists" says nothing useful
            return StoreError(
                f"cannot use the top-k cache: {blocker} is a file, not a folder "
                f"(move it away, or set {ENV} to another folder)"
            )
        return StoreError(f"cannot use the top-k cache {self.path}: {exc} (set {ENV} to another folder)")

    def not_a_folder(self) -> Path | None:
        """The nearest existing folder on the way to the database when it is in fact a file
        (then the cache cannot be made), else None."""
        for place in (self.path.parent, *self.path.parent.parents):
            if place.exists():
                return None if place.is_dir() else place
        return None

    def _prepare(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open_schema()
        except sqlite3.DatabaseError:  # not a database (damaged, or some other file): a cache
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            self._open_schema()
        self._ready = True

    def _open_schema(self) -> None:
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                with conn:
                    for kind, name in conn.execute(
                        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
                        "AND name NOT LIKE 'sqlite_%'"
                    ).fetchall():
                        conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
                    conn.executescript(_SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            conn.close()

    # -- a scan's record ---------------------------------------------------------------------

    def scan_id(
        self, conn: sqlite3.Connection, model_key: str, preprocess_key: str, folder: str, k: int
    ) -> int | None:
        row = conn.execute(
            "SELECT id FROM scans WHERE model_key = ? AND preprocess_key = ? AND folder = ? AND k = ?",
            (model_key, preprocess_key, folder, k),
        ).fetchone()
        return None if row is None else int(row[0])

    def create_scan(
        self,
        conn: sqlite3.Connection,
        model_key: str,
        preprocess_key: str,
        folder: str,
        k: int,
        depth: int,
        model_name: str,
        layers: list[tuple[str, int, int, int]],
    ) -> int:
        cur = conn.execute(
            "INSERT INTO scans (model_key, preprocess_key, folder, k, depth, "
            "model_name, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (model_key, preprocess_key, folder, k, depth, model_name, time.time()),
        )
        scan = int(cur.lastrowid)
        conn.executemany(
            "INSERT INTO layers (scan, id, name, channels, height, width, state) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (scan, i, name, c, h, w, LayerTopK(c, depth).to_bytes())
                for i, (name, c, h, w) in enumerate(layers)
            ],
        )
        return scan

    def forget(self, conn: sqlite3.Connection, scan: int) -> None:
        """Delete a scan and everything stored for it (the next scan starts from nothing)."""
        for table in ("entries", "layers", "images"):
            conn.execute(f"DELETE FROM {table} WHERE scan = ?", (scan,))
        conn.execute("DELETE FROM scans WHERE id = ?", (scan,))

    def info(self, conn: sqlite3.Connection, scan: int) -> dict:
        row = conn.execute(
            "SELECT folder, k, depth, model_name, complete, next_image, engines, "
            "owner FROM scans WHERE id = ?",
            (scan,),
        ).fetchone()
        keys = ("folder", "k", "depth", "model_name", "complete", "next_image", "engines", "owner")
        return dict(zip(keys, row, strict=True))

    def layers(self, conn: sqlite3.Connection, scan: int) -> list[LayerRow]:
        return [
            LayerRow(*r)
            for r in conn.execute(
                "SELECT id, name, channels, height, width FROM layers WHERE scan = ? ORDER BY id", (scan,)
            )
        ]

    def images(self, conn: sqlite3.Connection, scan: int) -> dict[str, ImageRow]:
        rows = conn.execute(
            "SELECT id, path, size, mtime_ns, state, error FROM images WHERE scan = ?", (scan,)
        )
        return {_path(r[1]): ImageRow(r[0], _path(r[1]), *r[2:]) for r in rows}

    def set_owner(self, conn: sqlite3.Connection, scan: int, owner: str) -> None:
        conn.execute("UPDATE scans SET owner = ? WHERE id = ?", (owner, scan))

    def owner(self, conn: sqlite3.Connection, scan: int) -> str | None:
        return conn.execute("SELECT owner FROM scans WHERE id = ?", (scan,)).fetchone()[0]

    # -- the running state -------------------------------------------------------------------

    def load_state(self, conn: sqlite3.Connection, scan: int) -> list[LayerTopK]:
        """Each layer's running top-``depth``, as the last batch or update left it."""
        depth = self.info(conn, scan)["depth"]
        return [
            LayerTopK.from_bytes(blob, channels, depth)
            for channels, blob in conn.execute(
                "SELECT channels, state FROM layers WHERE scan = ? ORDER BY id", (scan,)
            )
        ]

    def update_files(
        self,
        conn: sqlite3.Connection,
        scan: int,
        removed: list[int],
        added: list[tuple[int, str, int, int]],
        reset: bool,
    ) -> None:
        """Forget ``removed`` image ids, add ``added`` rows ``(id, path, size, mtime_ns)`` as
        pending; ``reset``: every image scanned so far is pending again."""
        conn.executemany("DELETE FROM images WHERE scan = ? AND id = ?", [(scan, i) for i in removed])
        conn.executemany(
            "INSERT INTO images (scan, id, path, size, mtime_ns, state) VALUES (?, ?, ?, ?, ?, 'pending')",
            [(scan, i, _text(p), s, m) for i, p, s, m in added],
        )
        if reset:
            conn.execute("UPDATE images SET state = 'pending' WHERE scan = ? AND state = 'done'", (scan,))
        if added:
            conn.execute("UPDATE scans SET next_image = ? WHERE id = ?", (max(a[0] for a in added) + 1, scan))

    def checkpoint(
        self,
        conn: sqlite3.Connection,
        scan: int,
        states: list[LayerTopK | bytes],
        outcomes: list[tuple[int, str, str | None]] = (),
        engine: str | None = None,
    ) -> None:
        """The images' outcomes ``(id, state, error)`` and every layer's state (or its
        :meth:`~LayerTopK.to_bytes`, taken earlier), in the caller's transaction (``with
        connect()``): a batch is stored whole or not at all."""
        conn.executemany(
            "UPDATE images SET state = ?, error = ? WHERE scan = ? AND id = ?",
            [(state, error, scan, i) for i, state, error in outcomes],
        )
        conn.executemany(
            "UPDATE layers SET state = ? WHERE scan = ? AND id = ?",
            [(s if isinstance(s, bytes) else s.to_bytes(), scan, i) for i, s in enumerate(states)],
        )
        if engine is not None:
            self._engine_used(conn, scan, engine)
        conn.execute("UPDATE scans SET complete = 0, updated = ? WHERE id = ?", (time.time(), scan))

    def pending(self, conn: sqlite3.Connection, scan: int) -> list[tuple[int, str]]:
        """The images still to scan ``(id, path)``, in id order."""
        return [
            (i, _path(p))
            for i, p in conn.execute(
                "SELECT id, path FROM images WHERE scan = ? AND state = 'pending' ORDER BY id", (scan,)
            )
        ]

    def finish(self, conn: sqlite3.Connection, scan: int, states: list[LayerTopK]) -> None:
        """Write the first ``k`` ranks of every channel as entries; mark the scan complete."""
        k = self.info(conn, scan)["k"]
        conn.execute("DELETE FROM entries WHERE scan = ?", (scan,))
        for i, s in enumerate(states):
            conn.executemany(
                "INSERT INTO entries (scan, layer, channel, rank, image, value, y, x)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(scan, i, *row) for row in s.rows(k)],
            )
        conn.execute("UPDATE scans SET complete = 1, updated = ? WHERE id = ?", (time.time(), scan))

    def _engine_used(self, conn: sqlite3.Connection, scan: int, engine: str) -> None:
        engines = conn.execute("SELECT engines FROM scans WHERE id = ?", (scan,)).fetchone()[0]
        names = [e for e in engines.split(",") if e]
        if engine not in names:
            conn.execute("UPDATE scans SET engines = ? WHERE id = ?", (",".join([*names, engine]), scan))

    # -- reading results ---------------------------------------------------------------------

    def entries(
        self, scan: int, layer: int, channels: list[int] | None, k: int
    ) -> dict[int, list[tuple[int, str, float, int, int]]]:
        """Channel -> its first ``k`` entries ``(rank, image path, value, y, x)``."""
        with self.connect() as conn:
            rows = (
                conn.execute(
                    "SELECT e.channel, e.rank, i.path, e.value, e.y, e.x FROM entries e "
                    "JOIN images i ON i.scan = e.scan AND i.id = e.image "
                    "WHERE e.scan = ? AND e.layer = ? AND e.rank < ? ORDER BY e.channel, e.rank",
                    (scan, layer, k),
                ).fetchall()
                if channels is None or len(channels) > 8
                else [
                    r
                    for c in channels
                    for r in conn.execute(
                        "SELECT e.channel, e.rank, i.path, e.value, e.y, e.x FROM entries e "
                        "JOIN images i ON i.scan = e.scan AND i.id = e.image "
                        "WHERE e.scan = ? AND e.layer = ? AND e.channel = ? AND e.rank < ? "
                        "ORDER BY e.rank",
                        (scan, layer, c, k),
                    )
                ]
            )
        wanted = None if channels is None else set(channels)
        out: dict[int, list[tuple[int, str, float, int, int]]] = {}
        for c, rank, path, value, y, x in rows:
            if wanted is None or c in wanted:
                out.setdefault(c, []).append((rank, _path(path), value, y, x))
        return out

    def layer_rows(self, scan: int, layer: int, k: int) -> list[tuple[int, int, str, float, int, int]]:
        """Every channel's first ``k`` entries as rows ``(channel, rank, image path, value, y,
        x)``, by channel and rank: what an export writes, without an object per entry."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT e.channel, e.rank, i.path, e.value, e.y, e.x FROM entries e "
                "JOIN images i ON i.scan = e.scan AND i.id = e.image "
                "WHERE e.scan = ? AND e.layer = ? AND e.rank < ? ORDER BY e.channel, e.rank",
                (scan, layer, k),
            ).fetchall()
        if any(isinstance(r[2], bytes) for r in rows):
            rows = [(c, rank, _path(p), v, y, x) for c, rank, p, v, y, x in rows]
        return rows

    def skipped(self, scan: int) -> list[tuple[str, str]]:
        with self.connect() as conn:
            return [
                (_path(p), e or "")
                for p, e in conn.execute(
                    "SELECT path, error FROM images WHERE scan = ? AND state = 'unreadable' ORDER BY path",
                    (scan,),
                )
            ]

    def engines(self, scan: int) -> list[str]:
        with self.connect() as conn:
            return [e for e in self.info(conn, scan)["engines"].split(",") if e]

    def counts(self, scan: int) -> dict[str, int]:
        with self.connect() as conn:
            return dict(
                conn.execute(
                    "SELECT state, COUNT(*) FROM images WHERE scan = ? GROUP BY state", (scan,)
                ).fetchall()
            )
