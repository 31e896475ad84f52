"""The images of a folder, recursively: what a scan runs over, and what tells it that a file
changed (its size and modification time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import ImageError
from models.images import IMAGE_SUFFIXES, is_image_file
from models.topk.running import UNKNOWN


@dataclass(frozen=True)
class FileStat:
    path: str  # relative to the folder, "/"-separated
    size: int
    mtime_ns: int


MONTAGE_SUFFIX = ".topk.png"  # the name of every montage --dataset --export writes


def check_folder(folder: str | Path) -> Path:
    """``folder`` as a path, or ``ImageError`` when there is no folder to scan there."""
    root = Path(folder)
    if not root.is_dir():
        why = "not a folder" if root.exists() else "no such folder"
        raise ImageError(f"cannot scan {folder}: {why}")
    return root


def list_images(folder: str | Path, exclude: str | Path | None = None) -> list[FileStat]:
    """Every file under ``folder`` whose suffix is an image suffix, sorted by relative path.

    Hidden files and folders (a leading ``.``: thumbnail caches, macOS's ``._photo.jpg``
    resource forks) are left out, the montages this app writes (``*.topk.png``, wherever an
    earlier export put them), and the folder ``exclude`` if it lies inside (an export's
    destination); symbolic links to files are followed,
    links to folders are not (no cycles). Raises ``ImageError`` for a folder that does not exist.
    """
    root = check_folder(folder)
    left_out = Path(exclude).expanduser().resolve() if exclude is not None else None
    found: list[FileStat] = []
    for top, dirs, files in os.walk(root, onerror=None):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (left_out is None or Path(top, d).resolve() != left_out)
        )
        for name in files:
            if name.startswith(".") or not is_image_file(name) or name.endswith(MONTAGE_SUFFIX):
                continue  # hidden, not an image, or a montage this app wrote (not a photo)
            full = Path(top, name)
            try:
                st = full.stat()
            except OSError:  # vanished, or a dangling link: not an image we could read
                continue
            if not os.path.isfile(full):
                continue
            found.append(FileStat(full.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.path)
    return found


def tie_order(files: list, ids: dict[str, int], added: list[tuple[int, str, int, int]]) -> np.ndarray:
    """Image id -> its path's place in ``files`` (the folder's list, sorted by path), for the
    images kept (``ids``: path -> id) and ``added`` (``(id, path, ...)``); ids of no listed file
    (deleted or changed ones) are unknown. Two entries of equal value rank by it, so the order
    does not depend on which files a scan found first (:mod:`.running`)."""
    ids = dict(ids)
    ids.update((path, i) for i, path, *_ in added)
    order = np.full(max(ids.values(), default=-1) + 1, UNKNOWN, dtype=np.int64)
    for rank, f in enumerate(files):
        order[ids[f.path]] = rank
    return order


__all__ = ["IMAGE_SUFFIXES", "FileStat", "check_folder", "list_images", "tie_order"]
