"""Run a model with every convolution on the selected engine, capturing every layer.

Two kinds of work, kept apart so a run costs little more than the model itself:

- **Once per model and input size** (:func:`plan`): a run on torch that copies every output
  and tracks receptive fields (:class:`~models.receptive_field.ReceptiveFieldMode`) learns the
  layer table — names, types, parameters, MACs, each convolution's arguments, receptive fields
  — which outputs later in-place ops overwrite, and whether every convolution comes from an
  ``nn.Conv2d`` the router can stand in for.
- **Every run** (:func:`run_model`): the capture of :mod:`models.capture` with the
  convolutions on the engine (swapped into the ``nn.Conv2d`` modules when the plan allows,
  else through a dispatch mode), copying only the outputs the plan says are overwritten and
  checking every other one's version counter afterwards.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from engine import ConvSpec, make_spec
from models.capture import CancelFn, Options, ProgressFn, Record, apply, input_value, model_form, value
from models.capture import eager as eager_capture
from models.capture import program as program_capture
from models.capture import script as script_capture
from models.capture.eager import hooked
from models.engine_mode import ConvCall, ConvRouter, EngineConvMode, swappable, swapped_convs
from models.errors import LayerError
from models.images import PreparedImage
from models.labels import top_predictions
from models.layers import LayerInfo, conv_bias, find_layer, grid_maps, layer_weights, split_layer_key
from models.receptive_field import ReceptiveField, ReceptiveFieldMode
from models.sources import LoadedModel, imagenet_categories

__all__ = ["LayerInfo", "Plan", "RunResult", "conv_bias", "effective_receptive_field", "find_layer",
           "layer_output", "layer_weights", "plan", "run_batch", "run_model"]


class LayerOutputs(Mapping):
    """Layer key -> its output for the image (batch element 0) as NumPy, made when first read:
    a derived row is computed again from the row it comes from (see :mod:`models.capture`);
    a kept one is a view of the tensor the layer returned. ``inputs=True``: each convolution's
    input instead."""

    def __init__(self, records: dict[str, Record], inputs: bool = False,
                 keys: list[str] | None = None) -> None:
        self._records = records
        self._inputs = inputs
        self._keys = list(records) if keys is None else keys
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        array = self._arrays.get(key)
        if array is None:
            if self._inputs:
                tensor = input_value(self._records, key, first=True)
            else:
                tensor = value(self._records, key, first=True)
            array = self._arrays[key] = _numpy(tensor[0])
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


@dataclass
class RunResult:
    model_name: str
    engine: str
    input_shape: tuple[int, ...]
    layers: list[LayerInfo]
    activations: Mapping[str, np.ndarray] = field(repr=False)  # layer -> its output (LayerOutputs)
    logits: np.ndarray | None
    predictions: list[tuple[str, float]]
    conv_calls: int
    total_ms: float
    # each convolution's input as the layer received it (batch 0, before a non-zero padding mode
    # pads it): what the explainer traces, without running the model again
    conv_inputs: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    # when the class names are not the model's own: a guess (ImageNet's) or output indices
    prediction_note: str | None = None

    def layer(self, name: str) -> LayerInfo:
        return find_layer(self, name)

    def index(self, name: str) -> int:
        return [la.name for la in self.layers].index(find_layer(self, name).name)

    def maps(self, name: str) -> np.ndarray:
        """The layer's output drawn as maps: ``(C, H, W)`` with the grid last, also for a
        channels-last layer (a view); other outputs as they are."""
        return grid_maps(self.activations[name], find_layer(self, name).grid_axes)


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

    @property
    def conv_keys(self) -> frozenset[str]:
        return frozenset(k for k, r in self.rows.items() if r.is_conv)


_plans: weakref.WeakKeyDictionary[nn.Module, dict[tuple, Plan]] = weakref.WeakKeyDictionary()
_programs: weakref.WeakKeyDictionary[nn.Module, object] = weakref.WeakKeyDictionary()


def _program(module: nn.Module, form: str) -> object:
    if form == "eager":
        return None
    if module not in _programs:
        _programs[module] = (script_capture.build(module) if form == "script"
                             else program_capture.build(module))
    return _programs[module]


def _capture(module: nn.Module, form: str, program: object, x: torch.Tensor,
             router: ConvRouter | None, opts: Options, conv_keys: frozenset[str] = frozenset(),
             dispatching: bool = False, the_plan: Plan | None = None
             ) -> tuple[object, list[Record]]:
    """One capture of any model form. ``dispatching``: an EngineConvMode on ``router`` is
    active, so the program interpreter leaves convolutions to it."""
    if form == "script":
        return script_capture.capture(module, program, x, router, opts)
    if form == "program":
        return program_capture.capture(module, program, x, router, opts, route=not dispatching)
    return eager_capture.capture(module, x, router, opts, conv_keys,
                                 the_plan.modules if the_plan is not None else None)


def plan(model: LoadedModel | nn.Module, x: torch.Tensor, cancel: CancelFn | None = None,
         progress: ProgressFn | None = None) -> Plan:
    """The plan of ``model`` for inputs shaped like ``x``: made once, then cached."""
    module = model if isinstance(model, nn.Module) else model.module
    key = (tuple(x.shape), x.dtype)
    cached = _plans.get(module, {}).get(key)
    if cached is not None:
        return cached
    made = _make_plan(module, x, cancel, progress)
    _plans.setdefault(module, {})[key] = made
    return made


def _make_plan(module: nn.Module, x: torch.Tensor, cancel: CancelFn | None,
               progress: ProgressFn | None) -> Plan:
    form = model_form(module)
    program = _program(module, form)
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
    opts = Options(clone=None, clone_inputs=None, cancel=cancel, progress=progress, total=total,
                   on_record=on_record)
    with torch.no_grad(), EngineConvMode(router), ReceptiveFieldMode([x]) as rf:
        _, records = _capture(module, form, program, x, router, opts, dispatching=True)
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
    clone_inputs = frozenset(k for k, (_, _, given, version) in originals.items()
                             if given is not None and given._version != version
                             and k not in input_from)
    rows: dict[str, LayerInfo] = {}
    inside: dict[str, list[str]] = {}
    for r in records:
        call = router.calls[r.calls[-1]] if r.calls else None
        path, _ = split_layer_key(r.key)
        m = modules.get(path)
        conv = _conv_spec(m, r, call, program)
        field_, axes, unknown = seen.get(r.key, (None, None, None))
        if r.block:  # the whole block: its parameters, and the MACs of the rows inside it
            params = int(sum(p.numel() for p in m.parameters())) if m is not None else int(sum(
                p.numel() for n, p in module.named_parameters() if n.startswith(path + ".")))
            inside[r.key] = [la.name for la in _inside(rows, path)]
            macs = sum(rows[k].macs for k in inside[r.key])
        else:
            params, macs = _params(module, m, path, call), _macs(module, r, conv)
        rows[r.key] = LayerInfo(
            name=r.key, type=r.type, output_shape=tuple(r.output.shape), block=r.block,
            params=params, macs=macs,
            time_ms=0.0, algorithm=None, receptive_field=field_, conv=conv,
            input_shape=tuple(r.input.shape) if conv is not None and r.input is not None else None,
            grid_axes=axes, field_note=None if field_ is not None or unknown is None else
            f"the receptive field is unknown: it passes through {unknown}, which ConvScope "
            f"does not know how to follow")
    aliases = frozenset(k for k in derive if rows[k].block)
    # hooked in the runs: leaves, and the containers with a block row of their own to record
    recorded = {split_layer_key(k)[0] for k, row in rows.items() if row.block and k not in aliases}
    run_modules = [(n, m, leaf) for n, m, leaf in hooked(module) if leaf or n in recorded] \
        if form == "eager" else []
    convs_in_leaves = {c for r in records if r.type != "F.conv2d" for c in r.calls}
    swappable_calls = {c for r in records if r.type != "F.conv2d" and r.calls
                       and swappable(modules.get(split_layer_key(r.key)[0])) for c in r.calls}
    return Plan(form=form, rows=rows, clone=clone, clone_inputs=clone_inputs,
                conv_calls=len(router.calls),
                dispatch=len(swappable_calls) != len(router.calls),
                functional=len(convs_in_leaves) != len(router.calls), program=program,
                modules=run_modules, derive=derive, input_from=input_from, aliases=aliases,
                inside=inside)


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
_DERIVABLE = (nn.modules.batchnorm._BatchNorm, nn.Identity, nn.Dropout, nn.ReLU, nn.ReLU6,
              nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh,
              nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus)


def _derivations(form: str, modules: dict[str, nn.Module], records: dict[str, Record],
                 sources: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Which rows the runs derive again when read instead of keeping (the plan's copies are the
    test: the module applied to its source row's value must give exactly the value the layer
    made), and which convolutions' inputs are a row's output (the explainer reads them)."""
    derive: dict[str, str] = {}
    for key, record in records.items():
        source = sources.get(key)
        m = modules.get(split_layer_key(key)[0])
        if source is None or record.block or not isinstance(m, _DERIVABLE) or m.training \
                or record.calls:
            continue
        try:
            again = apply(m, records[source].output)
        except Exception:  # a module that wants more than one input: keep it
            continue
        if again.shape == record.output.shape and torch.equal(again, record.output):
            derive[key] = source
    input_from = {key: sources[key] for key, r in records.items()
                  if r.calls and key in sources and r.input is not None
                  and r.input.shape == records[sources[key]].output.shape
                  and torch.equal(r.input, records[sources[key]].output)}
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
        pad = program_capture.padding_of(program, r.key) if isinstance(
            program, program_capture.ProgramCalls) else None
        if pad is not None and r.input is not None:
            mode, padding = pad
            shape = (1, *r.input.shape[1:])
        else:
            mode, padding, shape = "zeros", call.padding, (1, *call.input_shape[1:])
    try:
        return make_spec(shape, weight_shape, bias, call.stride, padding, call.dilation, call.groups,
                         mode)
    except ValueError:  # the module says one thing, the call another: trust the call
        return make_spec((1, *call.input_shape[1:]), weight_shape, bias, call.stride,
                         call.padding, call.dilation, call.groups, "zeros")


def _params(module: nn.Module, m: nn.Module | None, path: str, call: ConvCall | None) -> int:
    if m is not None:
        return int(sum(p.numel() for p in m.parameters(recurse=False)))
    prefix = path + "."
    own = [p for n, p in module.named_parameters() if n.startswith(prefix) and "." not in n[len(prefix):]]
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


def _prepare_input(image: PreparedImage | torch.Tensor) -> torch.Tensor:
    return image.tensor if isinstance(image, PreparedImage) else image


def run_model(model: LoadedModel, image: PreparedImage | torch.Tensor, engine: str = "auto", *,
              progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> RunResult:
    """Forward ``image`` through ``model`` with every convolution on ``engine``."""
    module = model.module
    x = _prepare_input(image).detach().float()
    the_plan = plan(model, x, cancel, progress)
    for _attempt in range(2):
        start = time.perf_counter()
        output, records, router = _run(module, the_plan, x, engine, cancel, progress)
        total_ms = (time.perf_counter() - start) * 1e3
        overwritten = [(r.key, *r.overwritten()) for r in records]
        if [r.key for r in records] == list(the_plan.rows) and not any(o or i for _, o, i in overwritten):
            break
        # this input took another path through the model (or wrote in place where the plan's
        # input did not): learn its plan and run again, copying what must be copied
        the_plan = _make_plan(module, x, cancel, None)
        _plans.setdefault(module, {})[(tuple(x.shape), x.dtype)] = the_plan
    layers, by_key, with_input = [], {}, []
    times: dict[str, float] = {}
    for r in records:
        row = the_plan.rows[r.key]
        calls = [router.calls[i] for i in r.calls] if router is not None else []
        if calls:
            time_ms, algorithm = sum(c.seconds for c in calls) * 1e3, calls[-1].algorithm
        elif row.is_conv:
            time_ms, algorithm = r.seconds * 1e3, "reference"
        elif row.block:  # its layers' times (a block made of other rows is not timed itself)
            time_ms, algorithm = sum(times.get(k, 0.0) for k in the_plan.inside.get(r.key, ())), None
        else:
            time_ms, algorithm = r.seconds * 1e3, None
        times[r.key] = time_ms
        layer = object.__new__(LayerInfo)  # the plan's row with this run's time (a hot loop)
        layer.__dict__.update(row.__dict__, time_ms=time_ms, algorithm=algorithm)
        layers.append(layer)
        by_key[r.key] = r
        if row.is_conv and row.input_shape is not None and len(row.input_shape) == 4 and (
                r.input is not None or r.input_from is not None):
            with_input.append(r.key)
    if isinstance(output, (tuple, list)):  # (logits, aux, ...) as scripted GoogLeNet returns
        output = next((o for o in output if isinstance(o, torch.Tensor)), None)
    logits = _numpy(output[0]) if isinstance(output, torch.Tensor) and output.dim() >= 1 else None
    predictions, note = _predictions(model, logits)
    return RunResult(
        model_name=model.name, engine=engine, input_shape=tuple(x.shape), layers=layers,
        activations=LayerOutputs(by_key), logits=logits, predictions=predictions,
        prediction_note=note,
        conv_calls=the_plan.conv_calls, total_ms=total_ms,
        conv_inputs=LayerOutputs(by_key, inputs=True, keys=with_input),
    )


def _run(module: nn.Module, the_plan: Plan, x: torch.Tensor, engine: str,
         cancel: CancelFn | None, progress: ProgressFn | None
         ) -> tuple[object, list[Record], ConvRouter | None]:
    opts = Options(clone=the_plan.clone, clone_inputs=the_plan.clone_inputs, cancel=cancel,
                   progress=progress, total=len(the_plan.rows), derive=the_plan.derive,
                   input_from=the_plan.input_from)
    router = _router(the_plan, engine, cancel)
    with torch.no_grad(), _route(module, the_plan, router):
        output, records = _capture(module, the_plan.form, the_plan.program, x, router, opts,
                                   the_plan.conv_keys, the_plan=the_plan)
    records = _with_aliases(records, the_plan)
    if progress is not None:
        progress(len(the_plan.rows), len(the_plan.rows))
    return output, records, router


def run_batch(model: LoadedModel | nn.Module, x: torch.Tensor, engine: str = "auto", *,
              layers: list[str] | None = None, cancel: CancelFn | None = None
              ) -> tuple[object, dict[str, torch.Tensor]]:
    """A batch ``(N, C, H, W)`` through the model with every convolution on ``engine``: the
    model's output and each layer's whole output ``(N, ...)`` (only ``layers``, when given),
    exactly as :func:`run_model` records them (copied where a later in-place op would
    overwrite them). Layer keys are those of :func:`run_model` on one image of that size."""
    module = model if isinstance(model, nn.Module) else model.module
    x = x.detach().float()
    the_plan = plan(module, x[:1], cancel)
    if layers is not None:
        unknown = [k for k in layers if k not in the_plan.rows]
        if unknown:
            raise LayerError(f"unknown layer {unknown[0]!r}")
    keys = frozenset(layers) if layers is not None else None
    # a derived layer is computed from the rows it comes from: capture those too
    wanted = None if keys is None else frozenset(keys | _sources(the_plan.derive, set(keys)))
    opts = Options(clone=the_plan.clone, clone_inputs=frozenset(), keys=wanted, cancel=cancel,
                   derive=the_plan.derive)
    router = _router(the_plan, engine, cancel)
    with torch.no_grad(), _route(module, the_plan, router):
        output, records = _capture(module, the_plan.form, the_plan.program, x, router, opts,
                                   the_plan=the_plan)
    if any(r.overwritten()[0] for r in records):  # another path than the plan's input took
        opts.clone = None
        with torch.no_grad(), _route(module, the_plan, router):
            output, records = _capture(module, the_plan.form, the_plan.program, x, router, opts,
                                       the_plan=the_plan)
    by_key = {r.key: r for r in records}
    for k in the_plan.aliases:
        if wanted is None or k in wanted:
            by_key[k] = _alias(the_plan, k)
    return output, {k: value(by_key, k) for k in the_plan.rows if k in by_key
                    and (keys is None or k in keys)}


def _alias(the_plan: Plan, key: str) -> Record:
    """The record of a block row that is another row's output (not hooked in the runs)."""
    return Record(key, the_plan.rows[key].type, None, derive=(eager_capture.ALIAS,
                                                             the_plan.derive[key]), block=True)


def _with_aliases(records: list[Record], the_plan: Plan) -> list[Record]:
    """The capture's records with the plan's alias block rows in their places; as they are
    when the capture took another path than the plan's (the caller plans again)."""
    if not the_plan.aliases:
        return records
    if [r.key for r in records] != [k for k in the_plan.rows if k not in the_plan.aliases]:
        return records
    by_key = {r.key: r for r in records}
    return [_alias(the_plan, k) if k in the_plan.aliases else by_key[k] for k in the_plan.rows]


def _sources(derive: dict[str, str], keys: set[str]) -> set[str]:
    """Every row the derived rows among ``keys`` are computed from, transitively."""
    found: set[str] = set()
    todo = [derive[k] for k in keys if k in derive]
    while todo:
        key = todo.pop()
        if key not in found:
            found.add(key)
            if key in derive:
                todo.append(derive[key])
    return found


def _router(the_plan: Plan, engine: str, cancel: CancelFn | None) -> ConvRouter | None:
    router = ConvRouter(engine, cancel)
    if router.is_reference and not (the_plan.form == "eager" and the_plan.functional):
        return None  # torch computes every convolution; the plan knows which layers they are
    return router


def _route(module: nn.Module, the_plan: Plan, router: ConvRouter | None):
    """How the convolutions reach the router: not at all (torch), an interpreter that calls it
    (a program), swapped into the Conv2d modules, or a dispatch mode."""
    if router is None:
        return contextlib.nullcontext()
    if the_plan.form == "program":
        return router.threads()
    if the_plan.form == "eager" and not the_plan.dispatch:
        return swapped_convs(module, router)
    return EngineConvMode(router)


def _numpy(t: torch.Tensor) -> np.ndarray:
    """One image's output as NumPy, without a copy when it is float32 already."""
    t = t.detach()
    if t.dtype != torch.float32:
        t = t.float()
    return t.numpy()


def _predictions(model: LoadedModel, logits: np.ndarray | None
                 ) -> tuple[list[tuple[str, float]], str | None]:
    imagenet = imagenet_categories() if model.categories is None else None
    return top_predictions(logits, model.categories, imagenet=imagenet)


def effective_receptive_field(model: LoadedModel | nn.Module, tensor: torch.Tensor, layer: str,
                              channel: int, y: int, x: int, cancel: CancelFn | None = None
                              ) -> np.ndarray:
    """``|d unit / d input|`` summed over input channels: ``(H, W)`` float32.

    Runs on torch with autograd (not on the selected engine: the engines compute forward passes
    only), for any model form. ``layer`` is a layer key (a module path, ``#n`` for its n-th
    call); ``(channel, y, x)`` index the layer's maps as drawn (:meth:`RunResult.maps`).
    """
    module = model if isinstance(model, nn.Module) else model.module
    form = model_form(module)
    program = _program(module, form)
    inp = tensor.detach().clone().requires_grad_(True)
    opts = Options(keys=frozenset({layer}), clone=None, cancel=cancel)  # before in-place ops
    with torch.enable_grad():
        _, records = _capture(module, form, program, inp, None, opts)
        if cancel is not None and cancel():
            from models.errors import Cancelled

            raise Cancelled("effective receptive field cancelled")
    if not records:
        path, call = split_layer_key(layer)
        if path in dict(module.named_modules()) or call:
            raise LayerError(f"layer {layer!r} did not run {call + 1} times")
        raise LayerError(f"unknown layer {layer!r}")
    out = records[0].output
    row = plan(module, tensor).rows.get(layer)
    axes = row.grid_axes if row is not None else None
    if out.dim() < 3 or (axes is None and out.dim() != 4):
        raise LayerError(f"layer {layer!r} has no spatial map")
    maps = _grid_tensor(out[0], axes)
    c, h, w = maps.shape
    if not (0 <= channel < c and 0 <= y < h and 0 <= x < w):
        raise LayerError(f"unit ({channel}, {y}, {x}) is outside layer {layer!r} ({c}x{h}x{w})")
    (grad,) = torch.autograd.grad(maps[channel, y, x], inp)
    return grad[0].abs().sum(0).numpy().astype(np.float32)


class _Reached(Exception):
    """Raised from the capture once the wanted layer is recorded: the layers after it never run."""


def layer_output(model: LoadedModel | nn.Module, x: torch.Tensor, layer: str, *, stop: bool = True,
                 on_output: Callable[[torch.Tensor], None] | None = None,
                 cancel: CancelFn | None = None) -> tuple[torch.Tensor, object | None]:
    """``layer``'s output for the batch ``x`` and the model's output, computed by torch with
    autograd as the caller has it (wrap in ``torch.enable_grad()`` for gradients), any model form.

    The layer's output is the tensor the layer made, not a copy, so gradients flow through it.
    ``stop``: end the forward pass right after the layer (the model's output is then None) --
    for eager models and ``.pt2`` programs; a TorchScript model always runs whole, and its layer
    outputs are copies made inside its graph: gradients reach the input through them, but the
    model's output does not depend on them. ``on_output(out)`` sees the output as soon as it
    is made, before any later layer runs (a gradient hook registered there survives a later
    in-place op). Raises ``LayerError`` for a layer that does not exist or did not run.
    """
    module = model if isinstance(model, nn.Module) else model.module
    form = model_form(module)
    found: list[torch.Tensor] = []

    def on_record(_record: Record, out: torch.Tensor, _given: torch.Tensor | None) -> None:
        found.append(out)
        if on_output is not None:
            on_output(out)
        if stop:
            raise _Reached

    opts = Options(keys=frozenset({layer}), cancel=cancel, on_record=on_record)
    try:
        output, _ = _capture(module, form, _program(module, form), x, None, opts)
    except _Reached:
        output = None
    if not found:
        path, call = split_layer_key(layer)
        if path in dict(module.named_modules()) or call:
            raise LayerError(f"layer {layer!r} did not run {call + 1} times")
        raise LayerError(f"unknown layer {layer!r}")
    return found[0], output


def _grid_tensor(t: torch.Tensor, axes: tuple[int, int] | None) -> torch.Tensor:
    if axes is None or (axes[0] - 1, axes[1] - 1) == (t.dim() - 2, t.dim() - 1):
        return t
    moved = torch.movedim(t, (axes[0] - 1, axes[1] - 1), (-2, -1))
    return moved.reshape(-1, *moved.shape[-2:])
