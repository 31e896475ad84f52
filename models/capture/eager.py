"""Eager models: a pre- and a post-hook on every module record each call as it ends.

Leaves are the layers; a container (a stage, a residual block, an Inception module) that
returns a tensor is a *block* row too (``Record.block``): its output is the block's own, after
the residual add or the concatenation. Most blocks return a tensor one of their leaves made
(a Sequential's last layer, the ReLU after the add): the plan names that leaf, and the block
row is derived from it (an identity), holding nothing of its own."""

from __future__ import annotations

import threading
import time

import torch
from torch import nn

from models.capture import Options, Record, kept, layer_key
from models.engine_mode import ConvRouter


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


def capture(module: nn.Module, x: torch.Tensor, router: ConvRouter | None, opts: Options,
            conv_keys: frozenset[str] = frozenset(),
            modules: list[tuple[str, nn.Module, bool]] | None = None) -> tuple[object, list[Record]]:
    """Run ``module(x)`` recording every leaf call (see :class:`models.capture.Record`).

    ``router``: computes the convolutions (already installed by the caller, as a swap or a
    dispatch mode), or None when torch computes them. ``conv_keys``: layers whose input is
    kept even without a router call in them (a reference run). ``modules``: :func:`hooked`
    of ``module``, when the caller has them already.
    """
    records: list[Record] = []
    ends: list[int] = []  # router calls made when each record ended
    seen: dict[str, int] = {}
    stack: list[tuple[float, int, torch.Tensor | None]] = []
    # Hooks act only for this run's thread: a run the GUI abandoned (a forward that never
    # returns) keeps its hooks on the module until it ends, and they must not record into, or
    # cancel, a later run of the same model on another thread.
    owner = threading.get_ident()
    # the hooks run ~140 times per pass of a small model: everything they read is a local
    get_ident, clock, tensor_type = threading.get_ident, time.perf_counter, torch.Tensor
    calls_made = router.calls if router is not None else []
    wanted, derive, input_from, on_record = opts.keys, opts.derive, opts.input_from, opts.on_record
    cancel = opts.cancel
    # progress about 50 times a pass, not once per layer (a GUI progress signal each time)
    every = max(1, opts.total // 50) if opts.progress is not None and opts.total else 0

    def pre(_m: nn.Module, inputs: tuple) -> None:
        if get_ident() != owner:
            return
        if cancel is not None and cancel():
            opts.check()
        given = inputs[0] if inputs and isinstance(inputs[0], tensor_type) else None
        stack.append((clock(), len(calls_made), given))

    def post_for(name: str, type_name: str, leaf: bool):
        def post(m: nn.Module, _inputs: tuple, out: object) -> None:
            if get_ident() != owner:
                return
            start, first, given = stack.pop()
            seconds = clock() - start
            if not isinstance(out, tensor_type):
                return
            call = seen[name] = seen.get(name, 0) + 1
            key = name if call == 1 else layer_key(name, call)
            if wanted is not None and key not in wanted:
                return
            made = len(calls_made)
            # a block's convolutions are its layers': it claims none (nor keeps its input)
            calls = list(range(first, made)) if leaf and made != first else []
            source = derive.get(key)
            if source is not None:  # derived when read: hold nothing
                record = Record(key, type_name, None, seconds=seconds, calls=calls,
                                derive=(m if leaf else ALIAS, source), block=not leaf)
            else:
                copy = opts.clones(key)
                record = Record(key, type_name, kept(out, copy), seconds=seconds, calls=calls,
                                version=out._version, cloned=copy, block=not leaf)
                if key in input_from:
                    record.input_from = input_from[key]
                elif given is not None and (calls or key in conv_keys):
                    record.input_cloned = opts.clones_input(key)
                    record.input = kept(given, record.input_cloned)
                    record.input_version = given._version
            if on_record is not None:
                on_record(record, out, given)
            records.append(record)
            ends.append(made)
            if every and len(records) % every == 0:
                opts.reported(len(records))
        return post

    handles = []
    for name, m, leaf in modules if modules is not None else hooked(module):
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post_for(name, type(m).__name__, leaf)))
    try:
        output = module(x)
    finally:
        for h in handles:
            h.remove()
    if router is not None:
        _add_functional_convs(module, router, records, ends, opts)
    return output, records


def _add_functional_convs(module: nn.Module, router: ConvRouter, records: list[Record],
                          ends: list[int], opts: Options) -> None:
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
        record = Record(key, "F.conv2d", call.output, input=call.input, seconds=call.seconds,
                        calls=[i], version=call.output._version,
                        input_version=call.input._version if call.input is not None else 0)
        records.insert(at, record)
        ends.insert(at, i + 1)
