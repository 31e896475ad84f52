"""TorchScript models (scripted or traced): every leaf call's output, from the inlined graph.

A script module has no Python forward to hook, but it keeps its module tree, and once its
graph is frozen (parameters kept) and inlined every op still knows which module call it came
from (``Node.getModuleHierarchy()``). Consecutive top-level ops of the same leaf module form one
call. We extend a copy of the graph: a ``convscope::mark(i)`` op before each call (its time,
the router's calls made during it, and a cancel check), a copy of each call's output right
after it (``aten::clone``: what later in-place ops cannot touch), of a convolution's input
before it, and return them all beside the model's output. The extended graph runs as a
function on the module's own state.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import torch

from models.capture import Clock, Options, Record, layer_key, short_type
from models.errors import Cancelled

_CONV_KINDS = {"aten::conv2d", "aten::_convolution", "aten::convolution", "aten::conv2d_padding"}
_HIERARCHY = re.compile(r"([^().]+)\(([^()]*)\)")
_local = threading.local()

_lib = torch.library.Library("convscope", "DEF")
_lib.define("mark(int index) -> ()")


def _mark(index: int) -> None:
    marks = getattr(_local, "marks", None)
    if marks is not None:
        marks(index)


_lib.impl("mark", _mark, "CompositeExplicitAutograd")


@dataclass
class _Call:
    key: str
    type: str
    convs: int  # convolutions among its ops
    output: int  # index in the extended function's outputs
    input: int | None  # index of its input's copy (convolutions only)


@dataclass
class ScriptProgram:
    """A script module's graph, extended to return every leaf call (built once per model)."""

    function: torch._C.ScriptFunction
    calls: list[_Call]
    module: torch._C.ScriptModule  # what the function runs on (its ``self``)


def _path(hierarchy: str) -> str:
    """``SELF(ResNet).layer1(Sequential).0(BasicBlock).relu(ReLU).UNKNOWN_INSTANCE(...)`` (or,
    traced, without the leading ``SELF``) -> ``layer1.0.relu``."""
    path = []
    for match in _HIERARCHY.finditer(hierarchy):
        name = match.group(1)
        if name == "UNKNOWN_INSTANCE":  # a function, not a module: the path ends here
            break
        if name != "SELF":  # SELF: another method of the same module (SqueezeExcitation._scale)
            path.append(name)
    return ".".join(path)


def _convs(node: torch._C.Node) -> int:
    if node.kind() in _CONV_KINDS:
        return 1
    return max((sum(_convs(n) for n in block.nodes()) for block in node.blocks()), default=0)


def build(module: torch.jit.ScriptModule) -> ScriptProgram:
    types = {name: getattr(m, "original_name", type(m).__name__) for name, m in module.named_modules()}
    leaves = {n for n in types if n and not any(o.startswith(n + ".") for o in types)}
    try:
        # frozen with its parameters kept (shared, not copied): attribute reads become
        # constants, so a branch on a flag such as MobileNetV2's use_res_connect is folded away
        # and every module call sits at the top level, in the order it runs
        frozen = torch._C._freeze_module(module._c, [], True, True)
        graph = frozen._get_method("forward").graph.copy()
    except RuntimeError:
        frozen, graph = module._c, module.inlined_graph.copy()
    nodes = [n for n in graph.nodes() if n.kind() != "prim::Constant"]
    groups: list[tuple[str, list[torch._C.Node]]] = []
    resolved: dict[str, str] = {}
    for node in nodes:
        path = _path(node.getModuleHierarchy())
        if path not in resolved:
            resolved[path] = _resolve(path, leaves, groups[-1][0] if groups else "")
        path = resolved[path]
        if groups and (groups[-1][0] == path or (not path and _glue(node, groups[-1][1]))):
            groups[-1][1].append(node)
        else:
            groups.append((path, [node]))
    extra: list[torch._C.Value] = []
    calls: list[_Call] = []
    seen: dict[str, int] = {}

    def add(path: str, kind: str, group: list[torch._C.Node], out: torch._C.Value, convs: int) -> None:
        seen[path] = seen.get(path, 0) + 1
        _insert_mark(graph, group[0], len(calls))
        given = None
        if convs:
            source = _input(group)
            if source is not None:
                given = len(extra) + 1
                extra.append(_clone(graph, source, before=group[0]))
        calls.append(_Call(layer_key(path, seen[path]), kind, convs, len(extra) + 1, given))
        extra.append(_clone(graph, out, after=group[-1]))

    for path, group in groups:
        if path:
            out = _output(group, graph)
            if out is not None:
                add(path, short_type(types[path]), group, out, sum(_convs(n) for n in group))
                continue
        _insert_mark(graph, group[0], -1)  # ops that belong to no leaf call
        for node in group:  # a convolution outside any leaf module: a layer named by its weight
            if node.kind() in _CONV_KINDS:
                add(_attribute_path(node.inputsAt(1)), "F.conv2d", [node], node.output(), 1)
                _insert_mark(graph, node, -1, after=True)
    _insert_mark(graph, graph.return_node(), -1)
    original = next(iter(graph.outputs()))
    graph.eraseOutput(0)
    pack = graph.create("prim::TupleConstruct", [original, *extra])
    pack.insertBefore(graph.return_node())
    pack.output().setType(torch._C.TupleType([v.type() for v in [original, *extra]]))
    graph.registerOutput(pack.output())
    with torch.jit.optimized_execution(False):
        function = torch._C._create_function_from_graph("convscope_capture", graph)
    return ScriptProgram(function, calls, frozen)


def _resolve(path: str, leaves: set[str], previous: str) -> str:
    """The leaf a hierarchy names, or "" for none. A loop over a ModuleList loses the list's
    own name (``0._depthwise_conv`` for ``_blocks.0._depthwise_conv``): the leaf that ends so,
    nearest to the previous call when several do."""
    if not path or path in leaves:
        return path
    ends = [leaf for leaf in leaves if leaf.endswith("." + path)]
    if not ends:
        return ""

    def shared(leaf: str) -> int:  # how many leading path names it shares with the previous
        return next(
            (i for i, (a, b) in enumerate(zip(leaf.split("."), previous.split("."), strict=False)) if a != b),
            min(leaf.count("."), previous.count(".")) + 1,
        )

    return max(ends, key=shared)


def _glue(node: torch._C.Node, group: list[torch._C.Node]) -> bool:
    """Attribute reads, constant lists and branches that name no leaf (a batch norm's training
    check) belong to the call around them; a list of the call's outputs (for a concatenation)
    comes after it."""
    if not node.kind().startswith("prim::"):
        return False
    made = {v.unique() for n in group for v in n.outputs()}
    return not any(v.unique() in made and v.type().kind() == "TensorType" for v in node.inputs())


def _output(group: list[torch._C.Node], graph: torch._C.Graph) -> torch._C.Value | None:
    """The value a call returns: the last tensor it makes that is used after it."""
    inside = set(group)
    ret = graph.return_node()
    for node in reversed(group):
        if node.kind() == "prim::GetAttr":  # a parameter read, not something the call made
            continue
        for value in node.outputs():
            if value.type().kind() != "TensorType":
                continue
            if any(u.user not in inside or u.user is ret for u in value.uses()):
                return value
    return None


def _attribute_path(value: torch._C.Value) -> str:
    """``self.block.w`` read through ``prim::GetAttr`` nodes -> ``block.w``."""
    names = []
    node = value.node()
    while node.kind() == "prim::GetAttr":
        names.append(node.s("name"))
        node = node.input().node()
    return ".".join(reversed(names)) or value.debugName()


def _input(group: list[torch._C.Node]) -> torch._C.Value | None:
    """The first tensor a call reads that was made before it (not a weight)."""
    made = {v for n in group for v in n.outputs()}
    for node in group:
        if node.kind() == "prim::GetAttr":
            continue
        for value in node.inputs():
            if (
                value not in made
                and value.type().kind() == "TensorType"
                and value.node().kind() != "prim::GetAttr"
            ):
                return value
    return None


def _insert_mark(graph: torch._C.Graph, at: torch._C.Node, index: int, after: bool = False) -> None:
    constant = graph.insertConstant(index)
    mark = graph.create("convscope::mark", [constant], 0)
    if after:
        constant.node().moveAfter(at)
        mark.insertAfter(constant.node())
    else:
        constant.node().moveBefore(at)
        mark.insertBefore(at)


def _clone(
    graph: torch._C.Graph,
    value: torch._C.Value,
    *,
    after: torch._C.Node | None = None,
    before: torch._C.Node | None = None,
) -> torch._C.Value:
    none = graph.insertConstant(None)
    node = graph.create("aten::clone", [value, none])
    node.output().setType(value.type())
    if after is not None:
        none.node().moveAfter(after)
        node.insertAfter(none.node())
    else:
        none.node().moveBefore(before)
        node.insertBefore(before)
    return node.output()


def capture(
    module: torch.jit.ScriptModule, program: ScriptProgram, x: torch.Tensor, router, opts: Options
) -> tuple[object, list[Record]]:
    """Run the extended graph; every call is copied when made (in-place ops cannot reach it)."""
    clock = Clock(lambda: len(router.calls) if router is not None else 0)
    laps: dict[int, tuple[float, list[int]]] = {}
    current = [-1]  # the call under way (-1: ops of no layer)
    cancelled = []

    def marks(index: int) -> None:
        lap = clock.lap()
        if current[0] >= 0:
            laps[current[0]] = lap
            opts.reported(len(laps))
        current[0] = index
        if opts.cancel is not None and opts.cancel():
            cancelled.append(True)
            raise Cancelled("run cancelled")

    _local.marks = marks
    try:
        with torch.jit.optimized_execution(False):
            outputs = program.function(program.module, x)
    except RuntimeError:
        if cancelled:  # TorchScript wraps our exception in its own
            raise Cancelled("run cancelled") from None
        if router is not None and router.error is not None:
            raise router.error from None
        raise
    finally:
        _local.marks = None
    records = []
    for index, call in enumerate(program.calls):
        if not opts.wants(call.key):
            continue
        seconds, made = laps[index]
        out = outputs[call.output]
        given = outputs[call.input] if call.input is not None else None
        record = Record(
            call.key,
            call.type,
            out,
            input=given,
            seconds=seconds,
            calls=made,
            version=out._version,
            cloned=True,
            input_cloned=True,
        )
        if opts.on_record is not None:
            opts.on_record(record, out, None)  # copies: nothing can overwrite them
        records.append(record)
    return outputs[0], records
