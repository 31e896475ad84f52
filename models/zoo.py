"""Compatibility name for :mod:`models.sources` (the catalog and file sources moved there).

Only ``models/runner.py`` still imports from here; once its import reads ``models.sources``,
delete this module.
"""

from models.sources import (  # noqa: F401
    DEFAULT_MODEL,
    MODEL_SUFFIXES,
    LoadedModel,
    available_models,
    checkpoint_dir,
    download,
    imagenet_categories,
    load_catalog,
    load_model,
)
