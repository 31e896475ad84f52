"""Class names for a classifier's outputs: a labels file, the catalog's, or an honest guess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.errors import ModelError

MAX_LABELS_BYTES = 16 << 20  # a labels file is text; a bigger one is not a labels file


def read_labels(path: str | Path) -> list[str]:
    """One class name per output: a text file with one name per line (blank lines ignored), or
    JSON: a list of names, or an object mapping index -> name (``{"0": "tench", ...}``, as
    ImageNet's class-index files are; a ``[id, name]`` pair takes the name)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LABELS_BYTES:
            raise ModelError(f"labels file {path.name} is larger than {MAX_LABELS_BYTES >> 20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ModelError(f"labels file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(
            f"cannot read labels file {path.name}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"labels file {path.name} is not valid JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        labels = _from_json(doc, path.name)
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path.name} holds no class names")
    return labels


def _from_json(doc: object, name: str) -> list[str]:
    def label(value: object) -> str:
        if isinstance(value, (list, tuple)) and value:
            value = value[-1]
        return str(value)

    if isinstance(doc, list):
        return [label(v) for v in doc]
    if isinstance(doc, dict):
        try:
            items = sorted((int(k), v) for k, v in doc.items())
        except ValueError:
            raise ModelError(f"labels file {name}: the keys of a JSON object must be class indices") from None
        if [i for i, _ in items] != list(range(len(items))):
            raise ModelError(f"labels file {name}: class indices must run 0..{len(items) - 1}")
        return [label(v) for _, v in items]
    raise ModelError(f"labels file {name}: expected a list of names or an index -> name object")


def top_predictions(
    logits: np.ndarray | None, categories: list[str] | None, k: int = 5, imagenet: list[str] | None = None
) -> tuple[list[tuple[str, float]], str | None]:
    """The top-``k`` classes of a 1-D output with their softmax probabilities, and a note when
    the names are not the model's own: ImageNet's for 1000 outputs without labels (a guess), or
    the output indices."""
    if logits is None or logits.ndim != 1 or len(logits) < 2:
        return [], None
    note = None
    names = categories
    if names is None or len(names) != len(logits):
        if names is not None:
            note = f"the labels name {len(names)} classes but the model has {len(logits)} outputs"
            names = None
        elif len(logits) == 1000 and imagenet is not None:
            names = imagenet
            note = "ImageNet's classes, a guess: the model has 1000 outputs and no labels"
        if names is None:
            names = [f"class {i}" for i in range(len(logits))]
            note = note or "no labels: output indices (give a labels file to name them)"
    z = np.asarray(logits, dtype=np.float64)
    if not np.all(np.isfinite(z)):
        note = "the model's output is not finite (NaN or infinity)"
    with np.errstate(invalid="ignore", over="ignore"):
        probs = np.exp(z - z.max())
        probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")[:k]
    return [(names[i], float(probs[i])) for i in order], note
