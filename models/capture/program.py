"""``torch.export`` programs (``.pt2``): every leaf call's output (and every container call's:
a block row), by interpreting the graph.

A loaded program is one flat graph, but each node remembers the module stack it was traced in
(``node.meta["nn_module_stack"]``: path and class of every module down to the innermost).
Consecutive nodes of the same leaf module form one call; its output is the last value the call
made that a later node reads. An ``fx.Interpreter`` runs the graph node by node, keeps those
values, checks for cancel between calls and hands convolutions to the router directly (no
dispatch mode needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx

from models.capture import Clock, Options, Record, kept, layer_key, short_type

_aten = torch.ops.aten
_CONVS = {_aten.conv2d.default, _aten.conv2d.padding, _aten.convolution.default, _aten._convolution.default}


_PADS = {
    _aten.pad.default: None,
    _aten.constant_pad_nd.default: "zeros",
    _aten.reflection_pad2d.default: "reflect",
    _aten.replication_pad2d.default: "replicate",
    _aten._pad_circular.default: "circular",
}


@dataclass
class _Call:
    key: str
    type: str
    first: fx.Node
    last: fx.Node  # after this node ran, the call is over
    output: fx.Node
    input: fx.Node | None
    convs: int
    block: bool = False  # a container's call: its output after its add or concatenation
    padding: tuple[str, tuple[int, int] | tuple[int, int, int, int]] | None = None  # see below


@dataclass
class ProgramCalls:
    """The leaf calls of a program's graph (found once per model)."""

    calls: list[_Call]


def _stack(node: fx.Node) -> list[tuple[str, str]]:
    stack = node.meta.get("nn_module_stack") or {}
    return [(str(v[0]), str(v[1])) for v in stack.values()]


def build(module: fx.GraphModule) -> ProgramCalls:
    nodes = [n for n in module.graph.nodes if n.op in ("call_function", "call_module")]
    paths = {p for n in nodes for p, _ in _stack(n)}
    leaves = {p for p in paths if p and not any(o.startswith(p + ".") for o in paths)}
    groups: list[tuple[str, str, list[fx.Node]]] = []
    for node in nodes:
        stack = _stack(node)
        path, kind = stack[-1] if stack else ("", "")
        path = path if path in leaves else ""
        if groups and groups[-1][0] == path:
            groups[-1][2].append(node)
        else:
            groups.append((path, kind, [node]))
    calls: list[_Call] = []
    seen: dict[str, int] = {}
    for path, kind, group in groups:
        convs = sum(1 for n in group if n.target in _CONVS)
        if not path:
            # a convolution outside any leaf module: a layer named by its weight
            for n in group:
                if n.target in _CONVS:
                    name = n.args[1].target if n.args[1].op == "get_attr" else n.name
                    calls.append(_numbered(seen, str(name).removesuffix(".weight"), "F.conv2d", [n], n))
            continue
        inside = set(group)
        output = next((n for n in reversed(group) if any(u not in inside for u in n.users)), None)
        if output is None:
            continue
        calls.append(_numbered(seen, path, short_type(kind), group, output, convs))
    return ProgramCalls(_with_blocks(calls, nodes, paths - leaves - {""}))


def _with_blocks(calls: list[_Call], nodes: list[fx.Node], containers: set[str]) -> list[_Call]:
    """The leaf calls and the containers' calls: a run of consecutive nodes in a container's
    scope is one call, its output the last value of the run a later node reads. A block is
    listed after the calls that end with it (inner blocks first), as eager hooks fire."""
    runs: list[tuple[int, str, list[fx.Node]]] = []  # (depth, path, nodes)
    open_runs: dict[str, list[fx.Node]] = {}
    for node in [*nodes, None]:
        inside = {p for p, _ in _stack(node)} & containers if node is not None else set()
        for path in [p for p in open_runs if p not in inside]:
            runs.append((path.count("."), path, open_runs.pop(path)))
        for path in inside:
            open_runs.setdefault(path, []).append(node)
    kinds = {p: k for n in nodes for p, k in _stack(n)}
    seen: dict[str, int] = {}
    blocks: dict[fx.Node, list[_Call]] = {}
    for _, path, group in sorted(runs, key=lambda r: nodes.index(r[2][0])):
        made = set(group)
        output = next((n for n in reversed(group) if any(u not in made for u in n.users)), None)
        if output is None:
            continue
        seen[path] = seen.get(path, 0) + 1
        blocks.setdefault(group[-1], []).append(
            _Call(
                layer_key(path, seen[path]),
                short_type(kinds[path]),
                group[0],
                group[-1],
                output,
                None,
                0,
                block=True,
            )
        )
    ordered: list[_Call] = []
    done: set[fx.Node] = set()
    for call in calls:
        ordered.append(call)
        if call.last in blocks and call.last not in done:
            done.add(call.last)
            ordered.extend(sorted(blocks[call.last], key=lambda c: -c.key.count(".")))
    for last, found in blocks.items():  # blocks that end on a node no leaf call ends on
        if last not in done:
            at = next(
                (i for i, c in enumerate(ordered) if nodes.index(c.last) > nodes.index(last)), len(ordered)
            )
            ordered[at:at] = sorted(found, key=lambda c: -c.key.count("."))
    return ordered


def _numbered(
    seen: dict[str, int], path: str, kind: str, group: list[fx.Node], output: fx.Node, convs: int = 1
) -> _Call:
    seen[path] = seen.get(path, 0) + 1
    made = set(group)
    given = (
        next((a for n in group for a in n.all_input_nodes if a not in made and a.op != "get_attr"), None)
        if convs
        else None
    )
    return _Call(
        layer_key(path, seen[path]),
        kind,
        group[0],
        group[-1],
        output,
        given,
        convs,
        padding=_padding(group) if convs else None,
    )


def _padding(group: list[fx.Node]) -> tuple[str, tuple[int, ...]] | None:
    """A Conv2d with a padding mode other than zeros pads its input itself, then convolves
    without padding: its (mode, padding) as the module has them."""
    for n in group:
        if n.target not in _PADS or not n.args:
            continue
        mode = _PADS[n.target] or (n.args[2] if len(n.args) > 2 else n.kwargs.get("mode", "constant"))
        mode = {
            "constant": "zeros",
            "reflect": "reflect",
            "replicate": "replicate",
            "circular": "circular",
        }.get(str(mode), str(mode))
        left, right, top, bottom = ([*list(n.args[1]), 0, 0, 0, 0])[:4]
        if any(u.target in _CONVS and u.args[0] is n for u in n.users):
            padding = (top, left) if (top, left) == (bottom, right) else (top, bottom, left, right)
            return mode, padding
    return None


def padding_of(program: ProgramCalls, key: str) -> tuple[str, tuple[int, ...]] | None:
    """The (padding mode, padding) of the convolution layer ``key``, when it pads itself."""
    return next((c.padding for c in program.calls if c.key == key), None)


class _Interpreter(fx.Interpreter):
    def __init__(
        self, module: fx.GraphModule, program: ProgramCalls, router, opts: Options, route: bool
    ) -> None:
        super().__init__(module)
        self.router, self.opts, self.route = router, opts, route
        self.first = {c.first: c for c in program.calls if not c.block}
        self.last: dict[fx.Node, list[_Call]] = {}
        for c in program.calls:
            self.last.setdefault(c.last, []).append(c)
        self.records: list[Record] = []
        self.clock = Clock(lambda: len(router.calls) if router is not None else 0)
        self.inputs: dict[str, tuple[torch.Tensor, torch.Tensor, int, bool]] = {}

    def run_node(self, n: fx.Node) -> object:
        call = self.first.get(n)
        if call is not None:
            self.opts.check()
            self.clock.lap()
            if call.input is not None and self.opts.wants(call.key):
                given = self.env[call.input]
                copy = self.opts.clones_input(call.key)
                self.inputs[call.key] = (given, kept(given, copy), given._version, copy)
        result = super().run_node(n)
        for call in self.last.get(n, ()):  # (the interpreter files a value after run_node)
            self._record(call, result if call.output is n else self.env[call.output])
        return result

    def _record(self, call: _Call, out: object) -> None:
        seconds, made = self.clock.lap() if not call.block else (0.0, [])
        if not isinstance(out, torch.Tensor) or not self.opts.wants(call.key):
            return
        copy = self.opts.clones(call.key)
        record = Record(
            call.key,
            call.type,
            kept(out, copy),
            seconds=seconds,
            calls=made,
            version=out._version,
            cloned=copy,
            block=call.block,
        )
        given = None
        if call.key in self.inputs:
            given, record.input, record.input_version, record.input_cloned = self.inputs.pop(call.key)
        if self.opts.on_record is not None:
            self.opts.on_record(record, out, given)
        self.records.append(record)
        self.opts.reported(len(self.records))

    def call_function(self, target, args, kwargs):
        if self.route and self.router is not None and target in _CONVS:
            result = self._conv(target, args, kwargs)
            if result is not None:
                return result
        return super().call_function(target, args, kwargs)

    def _conv(self, target, args, kwargs) -> torch.Tensor | None:
        names = ("input", "weight", "bias", "stride", "padding", "dilation")
        values = dict(zip(names, args, strict=False)) | kwargs
        x, w = values["input"], values["weight"]
        if target in (_aten.convolution.default, _aten._convolution.default):
            if args[6]:  # transposed
                self.router.passed_through += 1
                return None
            groups = args[8]
        else:
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
        padding = values.get("padding", 0 if target is not _aten.conv2d.padding else "valid")
        out = self.router.conv(
            x, w, values.get("bias"), values.get("stride", 1), padding, values.get("dilation", 1), groups
        )
        if out is None:
            self.router.passed_through += 1
        return out


def capture(
    module: fx.GraphModule, program: ProgramCalls, x: torch.Tensor, router, opts: Options, route: bool = True
) -> tuple[object, list[Record]]:
    """Run the program. ``route``: hand convolutions to ``router`` (else the router only counts
    the calls a dispatch mode makes, as when receptive fields are tracked too)."""
    interpreter = _Interpreter(module, program, router, opts, route)
    outputs = interpreter.run(x)
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        outputs = outputs[0]
    return outputs, interpreter.records
