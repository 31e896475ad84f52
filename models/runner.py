"""Run a model with every convolution on the selected engine, capturing every layer.

Two kinds of work, kept apart so a run costs little more than the model itself:

- **Once per model and input size** (:func:`~models.run_plan.plan`): the layer table, which
  outputs are overwritten later, which rows are derived when read, how the convolutions are
  routed (:mod:`models.run_plan`).
- **Every run** (:func:`run_model`, :func:`run_batch`): the capture of :mod:`models.capture`
  with the convolutions on the engine (handed to the router by the capture itself when every
  one is an ``nn.Conv2d`` it can stand in for, else through a dispatch mode), copying only the
  outputs the plan says are overwritten and checking every other one's version counter
  afterwards (another path through the model plans again).

Gradients (the effective receptive field, a layer's output for autograd) live in
:mod:`models.gradients`; both are importable from here, as is :func:`plan`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models.capture import CancelFn, Options, ProgressFn, Record, input_value, value
from models.engine_mode import ConvRouter, EngineConvMode
from models.errors import LayerError
from models.gradients import effective_receptive_field, layer_output
from models.images import PreparedImage
from models.labels import top_predictions
from models.layers import LayerInfo, conv_bias, find_layer, grid_maps, layer_weights
from models.run_plan import Plan, capture, plan, replan
from models.sources import LoadedModel, imagenet_categories

__all__ = [
    "LayerInfo",
    "Plan",
    "RunResult",
    "conv_bias",
    "effective_receptive_field",
    "find_layer",
    "layer_output",
    "layer_weights",
    "plan",
    "run_batch",
    "run_model",
]


class LayerOutputs(Mapping):
    """Layer key -> its output for the image (batch element 0) as NumPy, made when first read:
    a derived row is computed again from the row it comes from (see :mod:`models.capture`);
    a kept one is a view of the tensor the layer returned. ``inputs=True``: each convolution's
    input instead."""

    def __init__(
        self, records: dict[str, Record], inputs: bool = False, keys: list[str] | None = None
    ) -> None:
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


def _prepare_input(image: PreparedImage | torch.Tensor) -> torch.Tensor:
    return image.tensor if isinstance(image, PreparedImage) else image


def run_model(
    model: LoadedModel,
    image: PreparedImage | torch.Tensor,
    engine: str = "auto",
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> RunResult:
    """Forward ``image`` through ``model`` with every convolution on ``engine``."""
    module = model.module
    x = _prepare_input(image).detach().float()
    the_plan = plan(model, x, cancel, progress)
    for _attempt in range(2):
        start = time.perf_counter()
        output, records, router = _run(module, the_plan, x, engine, cancel, progress)
        total_ms = (time.perf_counter() - start) * 1e3
        if _as_planned(records, the_plan):
            break
        # this input took another path through the model (or wrote in place where the plan's
        # input did not): learn its plan and run again, copying what must be copied
        the_plan = replan(module, x, cancel)
    layers, by_key, with_input = [], {}, []
    times: dict[str, float] = {}
    conv_calls = router.calls if router is not None else None
    new = object.__new__
    for r, (key, row, conv, inside, has_input) in zip(records, the_plan.order, strict=True):
        if conv_calls is not None and r.calls:
            calls = [conv_calls[i] for i in r.calls]
            time_ms, algorithm = sum(c.seconds for c in calls) * 1e3, calls[-1].algorithm
        elif inside is not None:  # its layers' times (a block made of other rows is not timed itself)
            time_ms, algorithm = sum([times.get(k, 0.0) for k in inside]), None
        else:
            time_ms, algorithm = r.seconds * 1e3, "reference" if conv else None
        times[key] = time_ms
        layer = new(LayerInfo)  # the plan's row with this run's time (a hot loop)
        layer.__dict__.update(row.__dict__, time_ms=time_ms, algorithm=algorithm)
        layers.append(layer)
        by_key[key] = r
        if has_input and (r.input is not None or r.input_from is not None):
            with_input.append(key)
    if isinstance(output, (tuple, list)):  # (logits, aux, ...) as scripted GoogLeNet returns
        output = next((o for o in output if isinstance(o, torch.Tensor)), None)
    logits = _numpy(output[0]) if isinstance(output, torch.Tensor) and output.dim() >= 1 else None
    predictions, note = _predictions(model, logits)
    return RunResult(
        model_name=model.name,
        engine=engine,
        input_shape=tuple(x.shape),
        layers=layers,
        activations=LayerOutputs(by_key),
        logits=logits,
        predictions=predictions,
        prediction_note=note,
        conv_calls=the_plan.conv_calls,
        total_ms=total_ms,
        conv_inputs=LayerOutputs(by_key, inputs=True, keys=with_input),
    )


def _as_planned(records: list[Record], the_plan: Plan) -> bool:
    """The run recorded the plan's rows, and no kept output or input was written in place."""
    if len(records) != len(the_plan.order):
        return False
    for r, planned in zip(records, the_plan.order, strict=True):
        if r.key != planned[0]:
            return False
        out, given = r.output, r.input
        if out is not None and not r.cloned and out._version != r.version:
            return False
        if given is not None and not r.input_cloned and given._version != r.input_version:
            return False
    return True


def _run(
    module: nn.Module,
    the_plan: Plan,
    x: torch.Tensor,
    engine: str,
    cancel: CancelFn | None,
    progress: ProgressFn | None,
) -> tuple[object, list[Record], ConvRouter | None]:
    opts = Options(
        clone=the_plan.clone,
        clone_inputs=the_plan.clone_inputs,
        cancel=cancel,
        progress=progress,
        total=len(the_plan.rows),
        derive=the_plan.derive,
        input_from=the_plan.input_from,
    )
    router = _router(the_plan, engine, cancel)
    with torch.no_grad(), _route(module, the_plan, router):
        output, records = capture(
            module,
            the_plan.form,
            the_plan.program,
            x,
            router,
            opts,
            the_plan.conv_keys,
            _routes(the_plan, router),
            the_plan,
        )
    records = _with_aliases(records, the_plan)
    if progress is not None:
        progress(len(the_plan.rows), len(the_plan.rows))
    return output, records, router


def run_batch(
    model: LoadedModel | nn.Module,
    x: torch.Tensor,
    engine: str = "auto",
    *,
    layers: list[str] | None = None,
    cancel: CancelFn | None = None,
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
    opts = Options(
        clone=the_plan.clone, clone_inputs=frozenset(), keys=wanted, cancel=cancel, derive=the_plan.derive
    )
    router = _router(the_plan, engine, cancel)
    with torch.no_grad(), _route(module, the_plan, router):
        output, records = capture(
            module,
            the_plan.form,
            the_plan.program,
            x,
            router,
            opts,
            route=_routes(the_plan, router),
            the_plan=the_plan,
        )
    if any(r.overwritten()[0] for r in records):  # another path than the plan's input took
        opts.clone = None
        with torch.no_grad(), _route(module, the_plan, router):
            output, records = capture(
                module,
                the_plan.form,
                the_plan.program,
                x,
                router,
                opts,
                route=_routes(the_plan, router),
                the_plan=the_plan,
            )
    by_key = {r.key: r for r in records}
    for k in the_plan.aliases:
        if wanted is None or k in wanted:
            by_key[k] = the_plan.alias_records[k]
    return output, {k: value(by_key, k) for k in the_plan.rows if k in by_key and (keys is None or k in keys)}


def _with_aliases(records: list[Record], the_plan: Plan) -> list[Record]:
    """The capture's records with the plan's alias block rows in their places; as they are
    when the capture took another path than the plan's (the caller plans again)."""
    if not the_plan.aliases:
        return records
    captured = the_plan.captured_keys
    if len(records) != len(captured) or any(r.key != k for r, k in zip(records, captured, strict=True)):
        return records
    aliases, by_key = the_plan.alias_records, {r.key: r for r in records}
    return [aliases[k] if k in aliases else by_key[k] for k in the_plan.rows]


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
    # only an eager model's convolutions outside every leaf module (a dispatch mode catches
    # them) are recorded from the router's calls; every other capture keeps its own inputs
    router.keep_inputs = the_plan.form == "eager" and the_plan.dispatch
    return router


def _routes(the_plan: Plan, router: ConvRouter | None) -> bool:
    """Whether the capture hands the convolutions to the router itself: a program's
    interpreter, or an eager model whose convolutions are all swappable ``nn.Conv2d``."""
    return router is not None and (
        the_plan.form == "program" or (the_plan.form == "eager" and not the_plan.dispatch)
    )


def _route(module: nn.Module, the_plan: Plan, router: ConvRouter | None):
    """What surrounds a capture so that the convolutions reach the router: nothing (torch
    computes them), the router's thread setting (the capture routes them, see :func:`_routes`),
    or a dispatch mode."""
    if router is None:
        return contextlib.nullcontext()
    if _routes(the_plan, router):
        return router.threads()
    return EngineConvMode(router)


def _numpy(t: torch.Tensor) -> np.ndarray:
    """One image's output as NumPy, without a copy when it is float32 already."""
    t = t.detach()
    if t.dtype != torch.float32:
        t = t.float()
    return t.numpy()


def _predictions(model: LoadedModel, logits: np.ndarray | None) -> tuple[list[tuple[str, float]], str | None]:
    imagenet = imagenet_categories() if model.categories is None else None
    return top_predictions(logits, model.categories, imagenet=imagenet)
