"""State dicts: weights only (``torch.save(model.state_dict())``, or a checkpoint dict holding
one), put into a catalog architecture the user names, or that their keys and shapes give away.

Read with torch's weights-only unpickler: tensors and plain containers, nothing that runs.
"""

from __future__ import annotations

import torch

from models.errors import ArchitectureNeededError, ModelError
from models.sources import catalog
from models.sources.base import FileOptions, Opened
from models.sources.probe import FileProbe, NotWeightsOnly

NAME = "state_dict"
_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "network", "weights")
_SHOWN = 3  # keys named per kind of disagreement; the rest are counted


def claims(probe: FileProbe) -> bool:
    """A ``torch.save`` file the weights-only unpickler reads (else it is a pickled object)."""
    if not probe.is_checkpoint:
        return False
    try:
        probe.weights_only()
    except NotWeightsOnly:
        return False
    return True


def state_dict_of(obj: object) -> dict[str, torch.Tensor] | None:
    """The tensors of a state dict, or of the state dict a checkpoint dict wraps (``state_dict``,
    ``model``, ...); ``module.`` prefixes (from ``DataParallel``) removed. ``None`` otherwise."""
    if not isinstance(obj, dict):
        return None
    for key in _WRAPPERS:
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k).removeprefix("module."): v for k, v in obj.items()}
    return None


def guess_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """The catalog architecture whose state dict has exactly these keys and shapes, if any."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name in catalog.available_models():
        if catalog.architecture_signature(name) == shapes:
            return name
    return None


def mismatch(state: dict[str, torch.Tensor], arch: str) -> str | None:
    """How ``state`` disagrees with architecture ``arch`` (keys missing, unexpected, shapes), the
    first few of each named and all counted; ``None`` when it fits."""
    expected = catalog.architecture_signature(arch)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {_shape(state[k].shape)} vs {_shape(expected[k])}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    parts = []
    for items, what in ((missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape")):
        if items:
            shown = ", ".join(items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "")
            parts.append(f"{len(items)} {'key' if len(items) == 1 else 'keys'} {what} ({shown})")
    return "; ".join(parts) or None


def _shape(shape: tuple[int, ...] | torch.Size) -> str:
    return "x".join(str(int(s)) for s in shape) or "scalar"


def load(probe: FileProbe, options: FileOptions) -> Opened:
    """The file's weights in catalog architecture ``options.arch``; see :func:`build`."""
    state = state_dict_of(probe.weights_only())
    if state is None:
        held = type(probe.weights_only()).__name__
        raise ModelError(f"{probe.name} holds neither a model nor a state dict (a {held})")
    return build(probe.name, state, options.arch)


def build(name: str, state: dict[str, torch.Tensor], arch: str | None) -> Opened:
    """Catalog architecture ``arch`` holding the weights ``state`` (of file ``name``).

    The architecture is never taken from the guess silently: the user says it (the guess is
    offered with the question). Raises :class:`ArchitectureNeededError` when ``arch`` is missing
    or does not fit, with the architecture whose keys and shapes the weights have, if one does.
    """
    guess = guess_architecture(state)
    if not arch:
        found = (
            f"; its keys and shapes are those of {guess}"
            if guess
            else ("; its keys and shapes match no catalog architecture")
        )
        raise ArchitectureNeededError(
            f"{name} is a state dict (weights only): the architecture they belong to is needed{found}",
            guess=guess,
        )
    if arch not in catalog.available_models():
        raise ModelError(f"unknown architecture {arch!r}; catalog: {', '.join(catalog.available_models())}")
    problem = mismatch(state, arch)
    if problem:
        hint = f"; its keys and shapes are those of {guess}" if guess and guess != arch else ""
        raise ArchitectureNeededError(
            f"{name} does not fit architecture {arch}: {problem}{hint}", guess=guess
        )
    module = catalog.load_catalog(arch, untrained=True).module
    module.load_state_dict(state, strict=True)
    return Opened(module, NAME, arch=arch)
