"""A first look at a model file, before anything in it is loaded: what container it is.

Deciding by content, not by name: a TorchScript file named ``.pt2`` or a booby-trapped archive
named ``.pt`` is handled as what it is. Reading the zip directory and the first bytes runs
nothing from the file.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.errors import ModelError

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_PICKLE_PROTO = 0x80  # every pickle since protocol 2 starts with PROTO; torch.save's legacy format too


class NotWeightsOnly(Exception):
    """torch's weights-only unpickler refused the file: it names Python objects (``global_``),
    so loading it would run code from it."""

    def __init__(self, global_: str | None) -> None:
        super().__init__(global_ or "a Python object")
        self.global_ = global_


@dataclass
class FileProbe:
    """A model file as seen from outside: its name, size, first bytes and zip directory."""

    path: Path
    size: int
    head: bytes
    members: tuple[str, ...] | None  # zip member names without the archive's root folder
    _checkpoint: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_zip(self) -> bool:
        return self.members is not None

    def has(self, member: str) -> bool:
        return self.members is not None and member in self.members

    def has_prefix(self, prefix: str) -> bool:
        return self.members is not None and any(m.startswith(prefix) for m in self.members)

    @property
    def is_checkpoint(self) -> bool:
        """A ``torch.save`` file: a zip holding ``data.pkl``, or the legacy raw pickle."""
        return self.has("data.pkl") or (not self.is_zip and self.head[:1] == bytes([_PICKLE_PROTO]))

    def weights_only(self) -> object:
        """The file through torch's weights-only unpickler (tensors and plain containers only;
        any other class is refused before it is built, so nothing from the file runs).

        Raises :class:`NotWeightsOnly` when the file names other Python objects, ``ModelError``
        when it is no readable checkpoint at all.
        """
        if self._checkpoint is None:
            self._checkpoint = _weights_only_load(self)
        if isinstance(self._checkpoint, BaseException):
            raise self._checkpoint
        return self._checkpoint


def _weights_only_load(probe: FileProbe) -> object:
    try:
        with warnings.catch_warnings():
            # torch warns in two lines about a legacy pickle protocol before it refuses or reads
            # the file; what it decides is said in one line below, or the file loads
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(probe.path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names the class it refused ("Unsupported global: GLOBAL mod.Class was not an
        # allowed global..."): the file holds Python objects. Anything else (an unknown opcode,
        # say) means the bytes are no checkpoint at all.
        text = str(exc)
        if "unsupported global" in text.lower():
            found = text.split("GLOBAL ", 1)[1].split()[0] if "GLOBAL " in text else None
            return NotWeightsOnly(found)
        return ModelError(
            f"{probe.name} is not a model file: its pickle is damaged or is no torch checkpoint"
        )
    except Exception:  # a damaged file can fail the unpickler or the zip reader anywhere
        return ModelError(f"{probe.name} is not a model file: a damaged or truncated torch checkpoint")


def probe_file(path: Path) -> FileProbe:
    """Look at ``path`` without loading it. ``ModelError`` for a file that is missing, empty or
    no model container at all (text, an image, a damaged archive)."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path.name}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelError(f"{path.name} is empty: not a model file")
    members = None
    if head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise ModelError(f"{path.name} is not a model file: a damaged or truncated zip archive") from None
        if len(set(names)) != len(names):
            # two members of one name: zip readers disagree on which one counts
            raise ModelError(f"{path.name} is not a model file: its archive lists a member twice")
        members = tuple(_strip_root(names))
    elif head[:1] != bytes([_PICKLE_PROTO]):
        raise ModelError(
            f"{path.name} is not a model file (neither TorchScript, a torch.export "
            f"program nor a torch.save checkpoint)"
        )
    return FileProbe(path=path, size=size, head=head, members=members)


def _strip_root(names: list[str]) -> list[str]:
    """torch writes every member under one root folder (named after the file when saved)."""
    roots = {n.split("/", 1)[0] for n in names if "/" in n}
    if len(roots) == 1 and all("/" in n for n in names):
        return [n.split("/", 1)[1] for n in names]
    return names
