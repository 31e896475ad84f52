"""TorchScript files (``torch.jit.save``, scripted or traced).

Their code is TorchScript, run by torch's interpreter, not Python, and their ``constants.pkl`` /
``data.pkl`` go through TorchScript's own unpickler, which builds TorchScript types only: loading
one runs no Python code from the file. Running it runs the operators its graphs call, so before
the module is handed out every graph of every method and hook is walked: a call to anything
but torch's own tensor operators and the interpreter's primitives (an operator that opens a
file by name, a custom or third-party operator) needs the user's trust
(:func:`models.sources.ops.plain_operator`).
"""

from __future__ import annotations

import warnings

import torch

from models.errors import ModelError, UntrustedModelError, one_line
from models.sources.base import FileOptions, Opened
from models.sources.ops import plain_operator
from models.sources.probe import FileProbe

NAME = "torchscript"


def claims(probe: FileProbe) -> bool:
    return probe.has("constants.pkl") or probe.has_prefix("code/")


def load(probe: FileProbe, options: FileOptions) -> Opened:
    """The scripted module, on the CPU. ``ModelError`` (one line) if torch cannot read it."""
    try:
        with warnings.catch_warnings():
            # torch 2.14 deprecates TorchScript (a two-line FutureWarning on every load); users
            # still hand us .pt files made with it, and there is nothing for them to fix
            warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
            module = torch.jit.load(str(probe.path), map_location="cpu")
    except Exception as exc:  # torch's reader fails in many ways on a damaged archive
        raise ModelError(f"{probe.name} is not a readable TorchScript file: {one_line(exc)}") from None
    call = unplain_call(module)
    if call is not None and not options.trust:
        raise UntrustedModelError(
            f"{probe.name} is a TorchScript model that calls {call}, which is not a plain tensor "
            f"operator (it can reach files or code outside the model): running it could do "
            f"anything its author wrote"
        )
    return Opened(module, NAME)


def unplain_call(module: torch.jit.ScriptModule) -> str | None:
    """The first operator in any graph of ``module`` (every submodule's methods and hooks,
    nested blocks and called functions included) that is not a plain one; None if all are."""
    seen: set[int] = set()
    for sub in [module, *module.modules()]:
        c = getattr(sub, "_c", None)
        if c is None or id(c) in seen:
            continue
        seen.add(id(c))
        graphs = []
        for name in c._method_names():
            graphs.append(_inlined(c._get_method(name)))
        for hook in [*c._get_forward_hooks(), *c._get_forward_pre_hooks()]:
            graphs.append(_inlined(hook))
        for graph in graphs:
            found = _first_unplain(graph.nodes())
            if found is not None:
                return found
    return None


def _inlined(function: object) -> torch._C.Graph:
    graph = function.graph.copy()
    torch._C._jit_pass_inline(graph)  # called functions' and methods' bodies, in place
    return graph


def _first_unplain(nodes) -> str | None:
    for node in nodes:
        kind = node.kind()
        if not plain_operator(kind):
            return kind
        for block in node.blocks():
            found = _first_unplain(block.nodes())
            if found is not None:
                return found
    return None


def first_conv_channels(module: torch.jit.ScriptModule) -> int | None:
    """The input channels of the first convolution the script runs, from its inlined graph:
    the weight it reads, whether it is transposed, and its groups. ``None`` if not found."""
    try:
        graph = module.inlined_graph
    except Exception:  # a script without forward, say
        return None
    for node in graph.nodes():
        kind = node.kind()
        if kind not in _CONV_ARGS:
            continue
        transposed_at, groups_at = _CONV_ARGS[kind]
        inputs = list(node.inputs())
        weight = _attribute(module, inputs[1])
        if weight is None or weight.dim() < 3:
            return None
        transposed = kind.startswith("aten::conv_transpose") or (
            transposed_at is not None and bool(_constant(inputs[transposed_at]))
        )
        if transposed:  # weight (in, out / groups, kh, kw)
            return int(weight.shape[0])
        groups = _constant(inputs[groups_at])
        if not isinstance(groups, int):
            return None
        return int(weight.shape[1]) * groups  # weight (out, in / groups, kh, kw)
    return None


# aten op -> (index of its `transposed` argument or None, index of its `groups` argument)
_CONV_ARGS = {
    "aten::conv2d": (None, 6),
    "aten::conv1d": (None, 6),
    "aten::conv3d": (None, 6),
    "aten::conv_transpose2d": (None, 6),
    "aten::conv_transpose1d": (None, 6),
    "aten::conv_transpose3d": (None, 6),
    "aten::_convolution": (6, 8),
    "aten::convolution": (6, 8),
}


def _constant(value: torch._C.Value) -> object:
    node = value.node()
    if node.kind() != "prim::Constant":
        return None
    try:
        return value.toIValue()
    except RuntimeError:
        return None


def _attribute(module: torch.jit.ScriptModule, value: torch._C.Value) -> torch.Tensor | None:
    """The tensor a chain of ``prim::GetAttr`` from ``self`` reads (``self.0.weight``)."""
    path = []
    while value.node().kind() == "prim::GetAttr":
        node = value.node()
        path.append(node.s("name"))
        value = next(iter(node.inputs()))
    if value.node().kind() != "prim::Param":
        return None
    target: object = module
    for name in reversed(path):
        target = getattr(target, name, None)
        if target is None:
            return None
    return target if isinstance(target, torch.Tensor) else None
