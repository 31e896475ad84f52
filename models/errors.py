"""Errors a user can cause and fix: each carries a one-line message meant for them.

The command line prints ``error: <message>`` and exits 2; the GUI shows the message and keeps
its previous state. Anything else escaping is a bug.
"""

from __future__ import annotations


class ConvScopeError(ValueError):
    """Base class: bad input from the user (image, model, engine, layer, download)."""


class ImageError(ConvScopeError):
    """An image that cannot be read, is too large, or is not an image."""


class ModelError(ConvScopeError):
    """A model name or file that cannot be loaded, or a model that cannot be used."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights are neither cached nor downloadable (offline)."""


class LayerError(ConvScopeError):
    """An unknown layer name, or a unit outside a layer."""


class Cancelled(Exception):
    """Long work stopped because the caller asked it to."""
