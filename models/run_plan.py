"""What is the same for every run of one model at one input size: the :class:`Plan`, made once
by a run on torch that copies every output and tracks receptive fields
(:class:`~models.field_tracker.ReceptiveFieldMode`), then cached per model and input size.

It learns the layer table (names, types, parameters, MACs, each convolution's arguments,
receptive fields), which outputs later in-place ops overwrite (version counters), which
element-wise rows can be derived again from the row before them (proved on the copies), which
block rows are another row's output (aliases), and whether every convolution comes from an
``nn.Conv2d`` the router can stand in for. :func:`capture` runs one capture of any model form.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from engine import ConvSpec, make_spec
from models.capture import CancelFn, Options, ProgressFn, Record, apply, model_form
from models.capture import eager as eager_capture
from models.capture import program as program_capture
from models.capture import script as script_capture
from models.capture.eager import hooked
from models.engine_mode import ConvCall, ConvRouter, EngineConvMode, swappable
from models.field_tracker import ReceptiveFieldMode
from models.layers import LayerInfo, split_layer_key
from models.receptive_field import ReceptiveField
from models.sources import LoadedModel


@dataclass
class Plan:
    """What is the same for every run of one model at one input size."""

    form: str  # "eager" | "script" | "program"
    rows: dict[str, LayerInfo]  # times and algorithms are filled per run
    clone: frozenset[str]  # outputs a later in-place op overwrites: copied when recorded
    clone_inputs: frozenset[str]
    conv_calls: int
    dispatch: bool  # some convolution is not an nn.Conv2d the router can stand in for
    functional: bool  # some convolution is made outside every leaf module
    program: object = None  # script_capture.ScriptProgram | program_capture.ProgramCalls
    modules: list[tuple[str, nn.Module, bool]] = field(default_factory=list, repr=False)
    derive: dict[str, str] = field(default_factory=dict)  # rows computed again when read
    input_from: dict[str, str] = field(default_factory=dict)  # conv inputs that are rows
    # block rows whose output is another row's: the runs do not hook them (a hook on a module
    # takes torch's slow call path), their records are made after the capture (_with_aliases)
    aliases: frozenset[str] = frozenset()
    inside: dict[str, list[str]] = field(default_factory=dict)  # block row -> its leaf rows
    _entries: dict[bool, dict[int, tuple]] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def conv_keys(self) -> frozenset[str]:
        return frozenset(k for k, r in self.rows.items() if r.is_conv)

    def entries(self, route: bool) -> dict[int, tuple]:
        """The eager capture's :func:`~models.capture.eager.entries` of :attr:`modules`."""
        known = self._entries.get(route)
        if known is None:
            known = self._entries[route] = eager_capture.entries(self.modules, route)
        return known

    @functools.cached_property
    def alias_records(self) -> dict[str, Record]:
        """The records of the alias block rows (they hold nothing: the same for every run)."""
        return {
            k: Record(k, self.rows[k].type, None, derive=(eager_capture.ALIAS, self.derive[k]), block=True)
            for k in self.aliases
        }

    @functools.cached_property
    def captured_keys(self) -> list[str]:
        """The rows a run's capture records itself, in order (all but the aliases)."""
        return [k for k in self.rows if k not in self.aliases]

    @functools.cached_property
    def order(self) -> list[tuple[str, LayerInfo, bool, list[str] | None, bool]]:
        """Each row as a run reads it: key, row, whether a convolution, the rows inside a block
        (None for a layer), whether its input is kept for the explainer."""
        return [
            (
                k,
                r,
                r.is_conv,
                self.inside.get(k, []) if r.block else None,
                r.is_conv and r.input_shape is not None and len(r.input_shape) == 4,
            )
            for k, r in self.rows.items()
        ]


_plans: weakref.WeakKeyDictionary[nn.Module, dict[tuple, Plan]] = weakref.WeakKeyDictionary()
_programs: weakref.WeakKeyDictionary[nn.Module, object] = weakref.WeakKeyDictionary()


def program_of(module: nn.Module, form: str) -> object:
    if form == "eager":
        return None
    if module not in _programs:
        _programs[module] = (
            script_capture.build(module) if form == "script" else program_capture.build(module)
        )
    return _programs[module]


def capture(
    module: nn.Module,
    form: str,
    program: object,
    x: torch.Tensor,
    router: ConvRouter | None,
    opts: Options,
    conv_keys: frozenset[str] = frozenset(),
    route: bool = False,
    the_plan: Plan | None = None,
) -> tuple[object, list[Record]]:
    """One capture of any model form. ``route``: the capture hands the convolutions to
    ``router`` itself (else a dispatch mode on ``router`` is active, or there is no router)."""
    if form == "script":
        return script_capture.capture(module, program, x, router, opts)
    if form == "program":
        return program_capture.capture(module, program, x, router, opts, route=route)
    if the_plan is None:
        return eager_capture.capture(module, x, router, opts, conv_keys, route=route)
    return eager_capture.capture(
        module, x, router, opts, conv_keys, the_plan.modules, route, the_plan.entries(route)
    )


def plan(
    model: LoadedModel | nn.Module,
    x: torch.Tensor,
    cancel: CancelFn | None = None,
    progress: ProgressFn | None = None,
) -> Plan:
    """The plan of ``model`` for inputs shaped like ``x``: made once, then cached."""
    module = model if isinstance(model, nn.Module) else model.module
    key = (tuple(x.shape), x.dtype)
    cached = _plans.get(module, {}).get(key)
    if cached is not None:
        return cached
    made = _make_plan(module, x, cancel, progress)
    _plans.setdefault(module, {})[key] = made
    return made


def replan(module: nn.Module, x: torch.Tensor, cancel: CancelFn | None = None) -> Plan:
    """A new plan for inputs shaped like ``x`` (one took another path than the cached plan's
    input), cached in its place."""
    made = _make_plan(module, x, cancel, None)
    _plans.setdefault(module, {})[(tuple(x.shape), x.dtype)] = made
    return made


def _make_plan(
    module: nn.Module, x: torch.Tensor, cancel: CancelFn | None, progress: ProgressFn | None
) -> Plan:
    form = model_form(module)
    program = program_of(module, form)
    router = ConvRouter("reference", cancel)
    originals: dict[str, tuple[torch.Tensor, int, torch.Tensor | None, int]] = {}
    seen: dict[str, tuple[ReceptiveField | None, tuple[int, int] | None, str | None]] = {}
    made_by: dict[int, str] = {}  # id of a live output -> the latest row that returned it
    sources: dict[str, str] = {}  # row -> the row whose output its input was
    same: dict[str, str] = {}  # block row -> the row that made its output (unchanged since)

    def on_record(record: Record, out: torch.Tensor, given: torch.Tensor | None) -> None:
        seen[record.key] = (rf.field(out), rf.grid_axes(out), rf.unknown_op(out))
        originals[record.key] = (out, out._version, given, given._version if given is not None else 0)
        if given is not None and id(given) in made_by:
            sources[record.key] = made_by[id(given)]
        maker = made_by.get(id(out))
        if record.block and maker is not None and originals[maker][1] == out._version:
            same[record.key] = maker
        made_by[id(out)] = record.key

    total = len(hooked(module)) if form == "eager" else len(getattr(program, "calls", []))
    opts = Options(
        clone=None, clone_inputs=None, cancel=cancel, progress=progress, total=total, on_record=on_record
    )
    with torch.no_grad(), EngineConvMode(router), ReceptiveFieldMode([x]) as rf:
        _, records = capture(module, form, program, x, router, opts)
        for r in records:
            if r.key not in seen:  # a functional conv: its field is its output's
                seen[r.key] = (rf.field(r.output), rf.grid_axes(r.output), rf.unknown_op(r.output))
    modules = dict(module.named_modules())
    by_key = {r.key: r for r in records}
    derive, input_from = _derivations(form, modules, by_key, sources) if form == "eager" else ({}, {})
    if form == "eager":  # a block's output is a row's: read that row (see capture.eager)
        derive.update(same)
    overwritten = {k for k, (out, version, _, _) in originals.items() if out._version != version}
    clone = frozenset(overwritten - set(derive))
    clone_inputs = frozenset(
        k
        for k, (_, _, given, version) in originals.items()
        if given is not None and given._version != version and k not in input_from
    )
    rows: dict[str, LayerInfo] = {}
    inside: dict[str, list[str]] = {}
    for r in records:
        call = router.calls[r.calls[-1]] if r.calls else None
        path, _ = split_layer_key(r.key)
        m = modules.get(path)
        conv = _conv_spec(m, r, call, program)
        field_, axes, unknown = seen.get(r.key, (None, None, None))
        if r.block:  # the whole block: its parameters, and the MACs of the rows inside it
            params = (
                int(sum(p.numel() for p in m.parameters()))
                if m is not None
                else int(sum(p.numel() for n, p in module.named_parameters() if n.startswith(path + ".")))
            )
            inside[r.key] = [la.name for la in _inside(rows, path)]
            macs = sum(rows[k].macs for k in inside[r.key])
        else:
            params, macs = _params(module, m, path, call), _macs(module, r, conv)
        rows[r.key] = LayerInfo(
            name=r.key,
            type=r.type,
            output_shape=tuple(r.output.shape),
            block=r.block,
            params=params,
            macs=macs,
            time_ms=0.0,
            algorithm=None,
            receptive_field=field_,
            conv=conv,
            input_shape=tuple(r.input.shape) if conv is not None and r.input is not None else None,
            grid_axes=axes,
            field_note=None
            if field_ is not None or unknown is None
            else f"the receptive field is unknown: it passes through {unknown}, which ConvScope "
            f"does not know how to follow",
        )
    aliases = frozenset(k for k in derive if rows[k].block)
    # hooked in the runs: leaves, and the containers with a block row of their own to record
    recorded = {split_layer_key(k)[0] for k, row in rows.items() if row.block and k not in aliases}
    run_modules = (
        [(n, m, leaf) for n, m, leaf in hooked(module) if leaf or n in recorded] if form == "eager" else []
    )
    convs_in_leaves = {c for r in records if r.type != "F.conv2d" for c in r.calls}
    swappable_calls = {
        c
        for r in records
        if r.type != "F.conv2d" and r.calls and swappable(modules.get(split_layer_key(r.key)[0]))
        for c in r.calls
    }
    return Plan(
        form=form,
        rows=rows,
        clone=clone,
        clone_inputs=clone_inputs,
        conv_calls=len(router.calls),
        dispatch=len(swappable_calls) != len(router.calls),
        functional=len(convs_in_leaves) != len(router.calls),
        program=program,
        modules=run_modules,
        derive=derive,
        input_from=input_from,
        aliases=aliases,
        inside=inside,
    )


def _inside(rows: dict[str, LayerInfo], path: str) -> list[LayerInfo]:
    """The leaf rows of the block call at ``path`` that just ended: the rows right before it
    under its path (a block's rows end before it does)."""
    found = []
    for row in reversed(list(rows.values())):
        if not row.name.startswith(path + "."):
            break
        if not row.block:
            found.append(row)
    return found


# element-wise at inference, cheap, and the same on any thread: rows that can be derived again
_DERIVABLE = (
    nn.modules.batchnorm._BatchNorm,
    nn.Identity,
    nn.Dropout,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.SiLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.Mish,
    nn.Softplus,
)


def _derivations(
    form: str, modules: dict[str, nn.Module], records: dict[str, Record], sources: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Which rows the runs derive again when read instead of keeping (the plan's copies are the
    test: the module applied to its source row's value must give exactly the value the layer
    made), and which convolutions' inputs are a row's output (the explainer reads them)."""
    derive: dict[str, str] = {}
    for key, record in records.items():
        source = sources.get(key)
        m = modules.get(split_layer_key(key)[0])
        if source is None or record.block or not isinstance(m, _DERIVABLE) or m.training or record.calls:
            continue
        try:
            again = apply(m, records[source].output)
        except Exception:  # a module that wants more than one input: keep it
            continue
        if again.shape == record.output.shape and torch.equal(again, record.output):
            derive[key] = source
    input_from = {
        key: sources[key]
        for key, r in records.items()
        if r.calls
        and key in sources
        and r.input is not None
        and r.input.shape == records[sources[key]].output.shape
        and torch.equal(r.input, records[sources[key]].output)
    }
    return derive, input_from


def _conv_spec(m: nn.Module | None, r: Record, call: ConvCall | None, program: object) -> ConvSpec | None:
    if call is None:
        return None
    weight_shape = call.weight_shape
    bias = (weight_shape[0],) if call.has_bias else None
    mode = getattr(m, "padding_mode", None) if m is not None else None
    if isinstance(mode, str) and r.input is not None and hasattr(m, "padding"):
        padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        shape = (1, *r.input.shape[1:])
    else:
        pad = (
            program_capture.padding_of(program, r.key)
            if isinstance(program, program_capture.ProgramCalls)
            else None
        )
        if pad is not None and r.input is not None:
            mode, padding = pad
            shape = (1, *r.input.shape[1:])
        else:
            mode, padding, shape = "zeros", call.padding, (1, *call.input_shape[1:])
    try:
        return make_spec(shape, weight_shape, bias, call.stride, padding, call.dilation, call.groups, mode)
    except ValueError:  # the module says one thing, the call another: trust the call
        return make_spec(
            (1, *call.input_shape[1:]),
            weight_shape,
            bias,
            call.stride,
            call.padding,
            call.dilation,
            call.groups,
            "zeros",
        )


def _params(module: nn.Module, m: nn.Module | None, path: str, call: ConvCall | None) -> int:
    if m is not None:
        return int(sum(p.numel() for p in m.parameters(recurse=False)))
    prefix = path + "."
    own = [p for n, p in module.named_parameters() if n.startswith(prefix) and "." not in n[len(prefix) :]]
    if own:
        return int(sum(p.numel() for p in own))
    if call is not None:  # a bare weight used by F.conv2d
        return int(np.prod(call.weight_shape)) + (call.weight_shape[0] if call.has_bias else 0)
    return 0


def _macs(module: nn.Module, r: Record, conv: ConvSpec | None) -> int:
    if conv is not None:
        return int(conv.macs)  # for one image, like the layer's other facts
    if r.type == "Linear":
        from models.layers import parameter

        w = parameter(module, r.key, "weight")
        if w is not None and w.dim() == 2:
            positions = r.output[0].numel() // w.shape[0] if r.output.dim() > 1 else 1
            return int(w.numel() * positions)
    return 0
