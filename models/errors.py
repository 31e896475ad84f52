"""Errors a user can cause and fix: each carries a one-line message meant for them.

Messages describe the problem, not a remedy in one front end's words: the command line prints
``error: <message>`` (plus its own hint, e.g. a flag) and exits 2; the window shows the message
(or asks the question a subclass stands for) and keeps its previous state. The window branches on
the type, never on the text. Anything else escaping is a bug.
"""

from __future__ import annotations

import re


class ConvScopeError(ValueError):
    """Base class: bad input from the user (image, model, engine, layer, download)."""


class ImageError(ConvScopeError):
    """An image that cannot be read, is too large, or is not an image."""


class ModelError(ConvScopeError):
    """A model name or file that cannot be loaded, or a model that cannot be used."""


class UntrustedModelError(ModelError):
    """Loading this file would run code from it (a pickle, or an archive with pickled parts):
    allowed only when the user says they trust the file (``--trust-model`` / the window asks)."""


class ArchitectureNeededError(ModelError):
    """The file holds weights only (a state dict): the user must name the architecture
    (``--arch`` / the window asks). ``guess`` is the catalog architecture the keys suggest."""

    def __init__(self, message: str, guess: str | None = None) -> None:
        super().__init__(message)
        self.guess = guess


class WeightsUnavailableError(ModelError):
    """Pretrained weights are neither cached nor downloadable (offline). ``url`` and ``path``
    say what to fetch and where to put it, so the file can be fetched on another machine."""

    def __init__(self, message: str, url: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.url, self.path = url, path


class LayerError(ConvScopeError):
    """An unknown layer name, or a unit outside a layer."""


class Cancelled(Exception):
    """Long work stopped because the caller asked it to."""


# the last "SomeError: text" line of a message: TorchScript puts the real cause there, after
# "The following operation failed in the TorchScript interpreter." and two tracebacks
_CAUSE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Failure|Warning): (.+)$")


def one_line(exc: BaseException) -> str:
    """What went wrong in ``exc``, in one line: its first line, or, for a message that wraps a
    traceback (TorchScript's interpreter errors), the cause line at its end."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and ("Traceback" in text or "TorchScript" in lines[0]):
        for line in reversed(lines):
            match = _CAUSE.match(line)
            if match:
                return match.group(1).strip()
    return lines[0].strip()
