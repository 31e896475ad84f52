"""What a unit responds to: the top-k examples of every conv channel over the user's own folder.

The API a front end calls (all Qt-free; the window runs :func:`scan` and :func:`examples` on
its worker, the command line runs them directly):

- :func:`scan` ``(model, folder, engine="auto", *, k=9, batch=None, progress=None,
  cancel=None, store=None) -> TopKResult`` — run (or reuse) a scan; instant when the store
  already holds this model, preprocessing, folder and k with no file changed.
- :class:`TopKResult` — ``.layers`` (``LayerSummary(name, channels, height, width)``, model
  order), ``.entries(layer, channel) -> list[Entry(rank, path, value, y, x)]``,
  ``.layer_entries(layer, channels=None)``, ``.skipped() -> [(path, reason)]``, ``.stats``.
- :func:`examples` ``(model, result, layer, channel, engine="auto", *, maps=False,
  cancel=None) -> list[Example]`` — each example's ``crop`` ``(Sh, Sw, 3)`` uint8, ``box``,
  and with ``maps`` its channel ``map`` ``(H, W)`` and ``overlay`` ``(Sh, Sw)`` float32.
- :func:`crop`, :func:`overlay` — the same for one unit of one prepared image.
- :func:`~models.cache.cache_dir`, :func:`~models.cache.clear_cache` — where the store lives,
  and emptying it.

Modules: :mod:`.folder` (listing), :mod:`.running` (the running top-R, in NumPy),
:mod:`.keys` (what a stored scan is keyed by), :mod:`.store` (SQLite), :mod:`.scanner`,
:mod:`.crops`, :mod:`.export` (``--dataset ... --export``).
"""

from models.cache import cache_dir, clear_cache
from models.topk.crops import Example, crop, examples, overlay
from models.topk.scanner import (
    DEFAULT_K,
    Entry,
    LayerSummary,
    ScanStats,
    TopKResult,
    conv_layers,
    scan,
)
from models.topk.store import Store, StoreError

__all__ = [
    "DEFAULT_K",
    "Entry",
    "Example",
    "LayerSummary",
    "ScanStats",
    "Store",
    "StoreError",
    "TopKResult",
    "cache_dir",
    "clear_cache",
    "conv_layers",
    "crop",
    "examples",
    "overlay",
    "scan",
]
