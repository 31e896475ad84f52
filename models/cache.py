"""Where ConvScope keeps what it can recompute: the user cache directory, by platform convention.

- ``$CONVSCOPE_CACHE`` when set (tests and users who want it elsewhere);
- Linux and other Unixes: ``$XDG_CACHE_HOME/convscope``, else ``~/.cache/convscope``;
- macOS: ``~/Library/Caches/ConvScope``;
- Windows: ``%LOCALAPPDATA%\\ConvScope\\Cache``.

Qt's ``QStandardPaths`` would say the same, but ``models/`` never imports Qt. Everything here
is a cache: deleting it loses time, never work. :func:`clear_cache` removes only the files
ConvScope made (:data:`CACHE_FILES`), so pointing ``CONVSCOPE_CACHE`` at a shared folder is safe.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "CONVSCOPE_CACHE"
# the files ConvScope keeps in the cache directory (SQLite adds -wal / -shm beside a database)
CACHE_FILES = ("topk.sqlite3", "topk.sqlite3-wal", "topk.sqlite3-shm", "topk.sqlite3-journal")


def cache_dir() -> Path:
    """The cache directory (not created here)."""
    override = os.environ.get(ENV)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "ConvScope"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "ConvScope" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # the XDG spec: a relative value is invalid and must be ignored
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / "convscope"


def clear_cache() -> list[Path]:
    """Delete ConvScope's cache files (:data:`CACHE_FILES`); the paths removed. Other files in
    the directory are left alone, and so is the directory itself."""
    removed = []
    folder = cache_dir()
    for name in CACHE_FILES:
        path = folder / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
