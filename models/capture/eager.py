"""Eager models: every module's call is recorded as it ends, by a stand-in for its ``forward``.

Leaves are the layers; a container (a stage, a residual block, an Inception module) that
returns a tensor is a *block* row too (``Record.block``): its output is the block's own, after
the residual add or the concatenation. Most blocks return a tensor one of their leaves made
(a Sequential's last layer, the ReLU after the add): the plan names that leaf, and the block
row is derived from it (an identity), holding nothing of its own.

Why not forward hooks: a module with a hook takes torch's slow call path (a Python loop over
the hooks and a closure per call), and registering and removing ~300 hooks costs as much again:
on mobilenet_v2 that was 12% of the pass on one thread. A :class:`_Forward` is an instance
attribute ``forward`` (which ``nn.Module.__call__`` calls on its fast path), installed for the
duration of the captures that use the module and shared by them: it records the call for the
thread whose capture is under way and is the module's own ``forward`` for every other thread
(a run the GUI abandoned keeps its module until it ends, and a later run of the same model on
another thread neither records into it nor is cancelled by it). A swappable ``nn.Conv2d``
computes on the capture's router from there too (:func:`models.engine_mode.routed_conv`), so
two runs on two threads never swap each other's convolutions.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable, Iterable

import torch
from torch import nn

from models.capture import Options, Record, kept, layer_key
from models.engine_mode import ConvRouter, routed_conv, swappable


def leaves(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every leaf module (no children) by path, in definition order."""
    return [(n, m) for n, m in module.named_modules() if n and next(m.children(), None) is None]


def hooked(module: nn.Module) -> list[tuple[str, nn.Module, bool]]:
    """Every module but the root, by path in definition order, and whether it is a leaf (a
    layer) or a container (a block row when it returns a tensor)."""
    return [(n, m, next(m.children(), None) is None) for n, m in module.named_modules() if n]


ALIAS = nn.Identity()  # a block row whose output is a leaf's: derived as that row, unchanged


def weight_owners(module: nn.Module) -> dict[int, str]:
    """data_ptr of each 4-D weight -> its parameter path without ``.weight`` (``w`` for a bare
    parameter): the name of a convolution that no leaf module makes."""
    owners: dict[int, str] = {}
    for name, p in [*module.named_parameters(), *module.named_buffers()]:
        if p.dim() == 4:
            owners.setdefault(p.data_ptr(), name.removesuffix(".weight"))
    return owners


# thread id -> (id of each module its capture records -> what it is, the capture's call)
_runs: dict[int, tuple[dict[int, tuple], Callable]] = {}
_lock = threading.Lock()
_get_ident = threading.get_ident


class _Forward:
    """A module's ``forward`` while captures use it (see the module's doc)."""

    __slots__ = ("inner", "module", "previous", "users")

    def __init__(self, module: nn.Module, previous: Callable | None) -> None:
        self.module = module
        self.previous = previous  # an instance ``forward`` that was there before, if any
        self.inner = previous if previous is not None else types.MethodType(type(module).forward, module)
        self.users = 0

    def __call__(self, *args, **kwargs):
        run = _runs.get(_get_ident())
        if run is not None:
            entry = run[0].get(id(self.module))
            if entry is not None:
                return run[1](entry, self, args, kwargs)
        return self.inner(*args, **kwargs)

    def __deepcopy__(self, memo: dict) -> object:
        # a copy made while a capture runs (the Engines tab copies the model) gets the module's
        # own forward, bound to the copy: never this stand-in, which computes with the original
        import copy

        copied = memo.get(id(self.module))
        if copied is None:
            return self
        if self.previous is not None:
            return copy.deepcopy(self.previous, memo)
        return types.MethodType(type(copied).forward, copied)


def _install(modules: Iterable[nn.Module]) -> list[_Forward]:
    with _lock:
        installed = []
        for m in modules:
            current = m.__dict__.get("forward")
            if isinstance(current, _Forward) and current.module is m:
                f = current  # another capture (an abandoned run) uses it still
            else:
                f = _Forward(m, current)
                m.__dict__["forward"] = f
            f.users += 1
            installed.append(f)
        return installed


def _uninstall(installed: list[_Forward]) -> None:
    with _lock:
        for f in installed:
            f.users -= 1
            if f.users == 0 and f.module.__dict__.get("forward") is f:
                if f.previous is None:
                    del f.module.__dict__["forward"]
                else:
                    f.module.__dict__["forward"] = f.previous


def entries(modules: list[tuple[str, nn.Module, bool]], route: bool) -> dict[int, tuple]:
    """What a capture knows of each module it records, by ``id``: path, class name, whether a
    leaf, whether its convolution goes to the router (the same for every run of a plan)."""
    return {
        id(m): (name, type(m).__name__, leaf, route and leaf and swappable(m)) for name, m, leaf in modules
    }


def capture(
    module: nn.Module,
    x: torch.Tensor,
    router: ConvRouter | None,
    opts: Options,
    conv_keys: frozenset[str] = frozenset(),
    modules: list[tuple[str, nn.Module, bool]] | None = None,
    route: bool = False,
    known: dict[int, tuple] | None = None,
) -> tuple[object, list[Record]]:
    """Run ``module(x)`` recording every module call (see :class:`models.capture.Record`).

    ``router``: computes the convolutions, or None when torch computes them. ``route``: the
    swappable ``nn.Conv2d`` modules hand their convolution to ``router`` here (else the caller
    routes them, with a dispatch mode). ``conv_keys``: layers whose input is kept even without a
    router call in them (a reference run). ``modules``: :func:`hooked` of ``module``, or the
    part of it to record; ``known``: their :func:`entries` for this ``route``, when the caller
    keeps them.
    """
    records: list[Record] = []
    ends: list[int] = []  # router calls made when each record ended
    seen: dict[str, int] = {}
    # the stand-ins run ~150 times per pass of a small model: everything they read is a local
    clock, tensor_type = time.perf_counter, torch.Tensor
    calls_made = router.calls if router is not None else []
    wanted, derive, input_from, on_record = opts.keys, opts.derive, opts.input_from, opts.on_record
    clone, clone_inputs = opts.clone, opts.clone_inputs
    cancel = opts.cancel
    # progress about 50 times a pass, not once per layer (a GUI progress signal each time)
    every = max(1, opts.total // 50) if opts.progress is not None and opts.total else 0
    to_route = router is not None and route

    def call(entry: tuple, f: _Forward, args: tuple, kwargs: dict) -> object:
        name, type_name, leaf, routed = entry
        if cancel is not None and cancel():
            opts.check()
        given = args[0] if args and isinstance(args[0], tensor_type) else None
        first = len(calls_made)
        start = clock()
        out = (
            routed_conv(f.module, given, router) if routed and given is not None else f.inner(*args, **kwargs)
        )
        seconds = clock() - start
        if not isinstance(out, tensor_type):
            return out
        n = seen[name] = seen.get(name, 0) + 1
        key = name if n == 1 else layer_key(name, n)
        if wanted is not None and key not in wanted:
            return out
        made = len(calls_made)
        # a block's convolutions are its layers': it claims none (nor keeps its input)
        calls = list(range(first, made)) if leaf and made != first else []
        source = derive.get(key)
        if source is not None:  # derived when read: hold nothing
            record = Record(
                key,
                type_name,
                None,
                None,
                seconds,
                calls,
                0,
                0,
                False,
                False,
                (f.module if leaf else ALIAS, source),
                None,
                not leaf,
            )
        else:
            copy = clone is None or key in clone
            record = Record(
                key,
                type_name,
                kept(out, copy) if copy else out,
                None,
                seconds,
                calls,
                out._version,
                0,
                copy,
                False,
                None,
                None,
                not leaf,
            )
            if key in input_from:
                record.input_from = input_from[key]
            elif given is not None and (calls or key in conv_keys):
                record.input_cloned = copy_in = clone_inputs is None or key in clone_inputs
                record.input = kept(given, copy_in) if copy_in else given
                record.input_version = given._version
        if on_record is not None:
            on_record(record, out, given)
        records.append(record)
        ends.append(made)
        if every and len(records) % every == 0:
            opts.reported(len(records))
        return out

    listed = modules if modules is not None else hooked(module)
    if known is None:
        known = entries(listed, to_route)
    installed = _install(m for _, m, _ in listed)
    thread = _get_ident()
    outer = _runs.get(thread)  # a capture inside another on this thread (not expected)
    _runs[thread] = (known, call)
    try:
        output = module(x)
    finally:
        if outer is None:
            _runs.pop(thread, None)
        else:
            _runs[thread] = outer
        _uninstall(installed)
    if router is not None:
        _add_functional_convs(module, router, records, ends, opts)
    return output, records


def _add_functional_convs(
    module: nn.Module, router: ConvRouter, records: list[Record], ends: list[int], opts: Options
) -> None:
    """Convolutions no leaf module made (``F.conv2d`` in a container's forward) are layers too,
    named by their weight's path, placed where they ran."""
    inside = {c for r in records for c in r.calls}
    orphans = [i for i in range(len(router.calls)) if i not in inside]
    if not orphans:
        return
    owners = weight_owners(module)
    seen: dict[str, int] = {}
    for i in reversed(orphans):
        call = router.calls[i]
        name = owners.get(call.weight_ptr, f"conv{i}")
        seen[name] = seen.get(name, 0) + 1
    counts = dict(seen)
    for i in reversed(orphans):  # the later calls get the higher numbers
        call = router.calls[i]
        name = owners.get(call.weight_ptr, f"conv{i}")
        key = layer_key(name, counts[name])
        counts[name] -= 1
        if not opts.wants(key):
            continue
        at = sum(1 for end in ends if end <= i)
        record = Record(
            key,
            "F.conv2d",
            call.output,
            input=call.input,
            seconds=call.seconds,
            calls=[i],
            version=call.output._version,
            input_version=call.input._version if call.input is not None else 0,
        )
        records.insert(at, record)
        ends.insert(at, i + 1)
