"""Pickled models (``torch.save(model)``), and checkpoints that hold other Python objects.

Unpickling runs code named in the file, so this source loads only when the user trusts the file
(``trust=True``); otherwise :class:`UntrustedModelError` says why. A trusted checkpoint that turns
out to be a dict holding a state dict goes on as a state dict.
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import nn

from models.errors import ModelError, UntrustedModelError, one_line
from models.sources import state_dict
from models.sources.base import FileOptions, Opened
from models.sources.probe import FileProbe, NotWeightsOnly

NAME = "pickle"


def claims(probe: FileProbe) -> bool:
    """A ``torch.save`` file the weights-only unpickler refuses because it names Python objects."""
    if not probe.is_checkpoint:
        return False
    try:
        probe.weights_only()
    except NotWeightsOnly:
        return True
    return False


def load(probe: FileProbe, options: FileOptions) -> Opened:
    """The pickled module, or the state dict a pickled checkpoint holds in ``options.arch``."""
    obj = _unpickle(probe, options.trust)
    if isinstance(obj, nn.Module):
        return Opened(obj, NAME)
    state = state_dict.state_dict_of(obj)
    if state is not None:
        return state_dict.build(probe.name, state, options.arch)
    raise ModelError(f"{probe.name} holds a {type(obj).__name__}, neither a torch model nor a state dict")


def _unpickle(probe: FileProbe, trust: bool) -> object:
    """The unpickled object (a module, or whatever the checkpoint holds) when ``trust`` is given.

    Raises :class:`UntrustedModelError` without trust, ``ModelError`` (one line) when the pickle
    needs a class that cannot be imported here: a model class defined in the training script.
    """
    refused = None
    try:
        probe.weights_only()
    except NotWeightsOnly as exc:
        refused = exc.global_
        what = f" (it names {refused})" if refused else ""
        if not trust:
            raise UntrustedModelError(
                f"{probe.name} is a pickled model: loading it runs code from the file{what}"
            ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own notes on unpickling; we decided above
            return torch.load(probe.path, map_location="cpu", weights_only=False)
    except (AttributeError, ImportError) as exc:
        raise ModelError(_missing_class(probe.name, exc, refused)) from None
    except Exception as exc:
        raise ModelError(f"{probe.name} cannot be unpickled: {one_line(exc)}") from None


def _missing_class(name: str, exc: Exception, refused: str | None) -> str:
    """``Can't get attribute 'Net' on <module '__main__'>``: the model's class lived in the script
    that saved it; say so, and how to save the model so that it loads anywhere."""
    text = str(exc)
    attribute = re.search(r"Can't get attribute '([^']+)' on <module '([^']+)'", text)
    module = re.search(r"No module named '([^']+)'", text)
    if attribute:
        cls, where = attribute.group(1), attribute.group(2)
        if where.endswith("__main__") or (refused or "").startswith("__main__."):
            what = f"its class {cls} was defined in the script that saved it"
        else:
            what = f"its class {cls} is not in module {where} here"
    elif module:
        what = f"its class lives in module {module.group(1)}, which is not installed here"
    else:
        what = f"a class it needs cannot be imported ({one_line(exc)})"
    return (
        f"{name} is a pickled model, and {what}: a pickle stores the class's name, not its "
        f"code. Make the class importable, or save the model as TorchScript "
        f"(torch.jit.script(model).save(path)) or as a state dict "
        f"(torch.save(model.state_dict(), path))"
    )
