"""What a ``torch.export`` archive may hold to be loaded without trust: the allow-lists and
the checks of :mod:`models.sources.program`, which loads it.

``torch.export.load`` is not safe on a stranger's file. Besides the parts it unpickles with
``weights_only=False`` (the sample inputs when the safe unpickler refuses them, and any weight or
constant marked ``use_pickle``), the program's JSON itself reaches code: its ``guards_code``
strings are ``exec``-ed by ``ExportedProgram.module()``, its symbolic sizes go through
``sympy.sympify`` (an ``eval``), a node's target may name any callable under ``torch.`` (say
``torch.serialization.os.system``), a pytree context may import any module, a parameter's
name is pasted into generated Python, and ``data/aotinductor/`` holds shared libraries.

So everything in an archive is checked against what a plain CNN program needs, before torch
sees any of it:

- members: the model's JSON, its weights and constants config, raw tensor payloads, the sample
  inputs (and ``extra/`` files, which are never read); nothing else;
- weights and constants: raw bytes only (no ``use_pickle``, no pickled or custom objects)
  (:func:`check_payloads`);
- sample inputs: through the weights-only unpickler (tensors and containers), handed over as
  objects, so torch never unpickles them itself (:func:`safe_sample_inputs`);
- the graph (:func:`check_program`): ``torch.ops.aten`` operators (none that opens a file:
  ``models.sources.ops``) and ``getitem`` (plus integer arithmetic on sizes); arguments of plain
  kinds (no subgraphs, custom objects, operators); symbolic sizes only as sympy expressions of
  whitelisted functions, short numbers, small literal exponents and size symbols
  (:func:`~models.sources.program_expressions.plain_sympy`); ``guards_code`` only as integer
  comparisons of input sizes (:func:`~models.sources.program_expressions.plain_guard`);
  parameter and module names made of identifier characters; pytree specs of tuples, lists and
  dicts; node metadata cut to ``nn_module_stack`` and ``torch_fn``;
- after deserialization, the graph once more (:func:`check_graph`): every call is an aten
  operator or one of the allowed functions.

Whatever falls outside raises :class:`NeedsTrust` with the reason.
"""

from __future__ import annotations

import io
import json
import math
import operator
import re
from collections.abc import Iterator

import torch

from models.sources.ops import file_operators
from models.sources.program_expressions import IDENT as _IDENT
from models.sources.program_expressions import plain_guard, plain_sympy

__all__ = [
    "NeedsTrust",
    "check_graph",
    "check_payloads",
    "check_program",
    "plain_guard",
    "plain_sympy",
    "safe_sample_inputs",
]

_FQN = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")  # "layer1.0.conv1.weight"
_ATEN = re.compile(rf"^torch\.ops\.aten\.({_IDENT})\.({_IDENT})$")
# operators that open a file by name (from_file maps one read-write, save writes one)
_ATEN_DENIED = {k.split("::", 1)[1] for k in file_operators() if k.startswith("aten::")}
# integer arithmetic on sizes, as export writes it for dynamic shapes; all plain functions
_FUNCTIONS = {
    "_operator.getitem": operator.getitem,
    "_operator.add": operator.add,
    "_operator.sub": operator.sub,
    "_operator.mul": operator.mul,
    "_operator.floordiv": operator.floordiv,
    "_operator.truediv": operator.truediv,
    "_operator.mod": operator.mod,
    "_operator.pow": operator.pow,
    "_operator.neg": operator.neg,
    "_operator.eq": operator.eq,
    "_operator.ne": operator.ne,
    "_operator.lt": operator.lt,
    "_operator.le": operator.le,
    "_operator.gt": operator.gt,
    "_operator.ge": operator.ge,
    "_operator.and_": operator.and_,
    "_operator.or_": operator.or_,
    "_operator.not_": operator.not_,
    "math.ceil": math.ceil,
    "math.floor": math.floor,
    "math.trunc": math.trunc,
    "math.sqrt": math.sqrt,
    "torch.sym_int": torch.sym_int,
    "torch.sym_float": torch.sym_float,
    "torch.sym_max": torch.sym_max,
    "torch.sym_min": torch.sym_min,
    "torch.sym_not": torch.sym_not,
    "torch.sym_ite": torch.sym_ite,
    "torch.sym_sqrt": torch.sym_sqrt,
    "torch.sym_sum": torch.sym_sum,
}
_ARGUMENTS = {
    "as_none",
    "as_tensor",
    "as_tensors",
    "as_int",
    "as_ints",
    "as_float",
    "as_floats",
    "as_string",
    "as_strings",
    "as_sym_int",
    "as_sym_ints",
    "as_scalar_type",
    "as_memory_format",
    "as_layout",
    "as_device",
    "as_bool",
    "as_bools",
    "as_sym_bool",
    "as_sym_bools",
    "as_optional_tensors",
    "as_sym_float",
    "as_sym_floats",
    "as_optional_tensor",
    "as_complex",
    "as_int_lists",
    "as_float_lists",
}
_NODE_METADATA = {"nn_module_stack", "torch_fn"}  # plain strings, split; the rest is dropped
_TREESPEC_TYPES = {None, "builtins.tuple", "builtins.list", "builtins.dict"}
_VERIFIERS = {"", "ATEN", "TRAINING"}


class NeedsTrust(Exception):
    """The archive uses something that runs, or could run, code from it: the reason."""


def check_payloads(config: object, folder: str, prefix: str) -> set[str]:
    """Every weight or constant is raw tensor bytes; the members they name."""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise NeedsTrust(f"an unexpected {folder} config")
    names = set()
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise NeedsTrust(f"pickled data ({fqn!r} in {folder})")
        path = meta.get("path_name")
        if not (isinstance(path, str) and re.fullmatch(rf"{prefix}\d+", path)):
            raise NeedsTrust(f"a Python object among its constants ({fqn!r})")
        if not _FQN.match(str(fqn)) or not isinstance(meta.get("tensor_meta"), dict):
            raise NeedsTrust(f"an unexpected entry {fqn!r} in {folder}")
        _check_tree(meta["tensor_meta"])
        names.add(folder + path)
    return names


def safe_sample_inputs(data: bytes) -> object:
    """The sample inputs through the weights-only unpickler, as objects (``(args, kwargs)``)."""
    try:
        example = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise NeedsTrust("pickled sample inputs that hold Python objects") from None
    if not (
        isinstance(example, tuple)
        and len(example) == 2
        and isinstance(example[0], tuple)
        and isinstance(example[1], dict)
    ):
        raise NeedsTrust("sample inputs of an unexpected form")
    return example


def check_program(program: object) -> None:
    """The program's JSON: only what a plain program needs (see the module's docstring).
    Modifies ``program`` in place: node metadata cut down, graph-module metadata dropped."""
    if not isinstance(program, dict):
        raise NeedsTrust("an unexpected program description")
    _only_keys(
        program,
        {
            "graph_module",
            "opset_version",
            "range_constraints",
            "schema_version",
            "verifiers",
            "torch_version",
            "guards_code",
        },
        "program",
    )
    guards = program.get("guards_code") or []
    if not isinstance(guards, list) or not all(plain_guard(code) for code in guards):
        raise NeedsTrust("guard code (Python source that torch would run) beyond comparisons of input sizes")
    if any(v not in _VERIFIERS for v in program.get("verifiers") or []):
        raise NeedsTrust("an unknown verifier")
    for symbol, bounds in (program.get("range_constraints") or {}).items():
        if not (
            re.fullmatch(r"[a-z]+\d+", symbol)
            and isinstance(bounds, dict)
            and set(bounds) <= {"min_val", "max_val"}
            and all(v is None or type(v) is int for v in bounds.values())
        ):
            raise NeedsTrust("an unexpected range constraint")
    module = program.get("graph_module")
    if not isinstance(module, dict):
        raise NeedsTrust("no graph")
    _only_keys(
        module,
        {"graph", "signature", "module_call_graph", "metadata", "treespec_namedtuple_fields"},
        "graph module",
    )
    module["metadata"] = {}  # a free-form "custom" JSON for passes; nothing we need
    if module.get("treespec_namedtuple_fields"):
        raise NeedsTrust("named-tuple inputs or outputs")
    graph = module.get("graph")
    if not isinstance(graph, dict):
        raise NeedsTrust("no graph")
    _only_keys(
        graph,
        {
            "inputs",
            "outputs",
            "nodes",
            "tensor_values",
            "sym_int_values",
            "sym_bool_values",
            "sym_float_values",
            "custom_obj_values",
            "is_single_tensor_return",
        },
        "graph",
    )
    if graph.get("custom_obj_values"):
        raise NeedsTrust("custom objects")
    for node in graph.get("nodes") or []:
        _check_node(node)
    for argument in [*(graph.get("inputs") or []), *(graph.get("outputs") or [])]:
        _check_argument(argument)
    _check_signature(module.get("signature"))
    for entry in module.get("module_call_graph") or []:
        _check_call_graph_entry(entry)
    _check_tree(program)


def _only_keys(d: dict, allowed: set[str], what: str) -> None:
    unknown = set(d) - allowed
    if unknown:
        raise NeedsTrust(f"an unexpected {what} field ({sorted(unknown)[0]})")


def _check_node(node: object) -> None:
    if not isinstance(node, dict):
        raise NeedsTrust("an unexpected graph node")
    _only_keys(
        node, {"target", "inputs", "outputs", "metadata", "is_hop_single_tensor_return", "name"}, "node"
    )
    target = node.get("target")
    match = _ATEN.match(target) if isinstance(target, str) else None
    if not (target in _FUNCTIONS or (match and match.group(1) not in _ATEN_DENIED)):
        raise NeedsTrust(f"a call to {str(target)[:80]!r}, which is no plain tensor operator")
    for named in node.get("inputs") or []:
        if not isinstance(named, dict):
            raise NeedsTrust("an unexpected node input")
        _check_argument(named.get("arg"))
    for argument in node.get("outputs") or []:
        _check_argument(argument)
    metadata = node.get("metadata") or {}
    kept = {k: v for k, v in metadata.items() if k in _NODE_METADATA}
    if not all(isinstance(v, str) and v.isprintable() for v in kept.values()):
        raise NeedsTrust("unexpected node metadata")
    node["metadata"] = kept


def _check_argument(argument: object) -> None:
    if not (isinstance(argument, dict) and len(argument) == 1):
        raise NeedsTrust("an unexpected argument")
    kind = next(iter(argument))
    if kind not in _ARGUMENTS:
        raise NeedsTrust(f"an argument of kind {kind[:40]!r}")


def _check_signature(signature: object) -> None:
    if not isinstance(signature, dict):
        raise NeedsTrust("no signature")
    names = {
        "parameter": "parameter_name",
        "buffer": "buffer_name",
        "tensor_constant": "tensor_constant_name",
        "user_input": None,
    }
    for spec in signature.get("input_specs") or []:
        kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
        if kind not in names:
            raise NeedsTrust(f"an input of kind {str(kind)[:40]!r}")
        body = spec[kind]
        if kind == "user_input":
            if not (isinstance(body.get("arg"), dict) and set(body["arg"]) == {"as_tensor"}):
                raise NeedsTrust("an input that is not a tensor")
        elif not _FQN.match(str(body.get(names[kind]))):
            raise NeedsTrust(f"a {kind} named {str(body.get(names[kind]))[:60]!r}")
    for spec in signature.get("output_specs") or []:
        kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
        if kind not in ("user_output", "buffer_mutation"):
            raise NeedsTrust(f"an output of kind {str(kind)[:40]!r}")
        name = spec[kind].get("buffer_name")
        if kind == "buffer_mutation" and not _FQN.match(str(name)):
            raise NeedsTrust(f"a buffer named {str(name)[:60]!r}")


def _check_call_graph_entry(entry: object) -> None:
    if not isinstance(entry, dict) or not (entry.get("fqn") == "" or _FQN.match(str(entry.get("fqn")))):
        raise NeedsTrust("an unexpected module name")
    signature = entry.get("signature")
    if signature is None:
        return
    for key in ("in_spec", "out_spec"):
        try:
            protocol, spec = json.loads(signature.get(key))
        except (TypeError, ValueError):
            raise NeedsTrust("an unreadable input or output structure") from None
        if protocol != 1:
            raise NeedsTrust("an input or output structure of an unknown protocol")
        _check_treespec(spec)


def _check_treespec(spec: object) -> None:
    """Tuples, lists and dicts only: a pytree context may otherwise name a module to import."""
    if not isinstance(spec, dict) or spec.get("type") not in _TREESPEC_TYPES:
        raise NeedsTrust("inputs or outputs of a Python type other than tuple, list or dict")
    context = spec.get("context")
    if context is not None:
        try:
            value = json.loads(context)
        except (TypeError, ValueError):
            raise NeedsTrust("an unreadable input or output structure") from None
        if not (value is None or (isinstance(value, list) and all(isinstance(k, str | int) for k in value))):
            raise NeedsTrust("an input or output structure with unexpected keys")
    for child in spec.get("children_spec") or []:
        _check_treespec(child)


def _check_tree(tree: object) -> None:
    """Anywhere in the JSON: no subgraph, custom object or operator value, and every symbolic
    expression is sympy's printed form of sizes (sympify evaluates it as Python)."""
    for key, value in _walk(tree):
        if key in ("as_graph", "as_custom_obj", "as_operator", "as_string_to_argument"):
            raise NeedsTrust(f"an argument of kind {key!r}")
        if key == "as_expr":
            text = value.get("expr_str") if isinstance(value, dict) else None
            if not isinstance(text, str) or not plain_sympy(text):
                raise NeedsTrust("a symbolic size that is not a plain expression")


def _walk(tree: object) -> Iterator[tuple[str, object]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield key, value
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def check_graph(ep: torch.export.ExportedProgram) -> None:
    """After deserialization: every call is an aten operator or an allowed function."""
    allowed = set(_FUNCTIONS.values())
    for graph_module in ep.graph_module.modules():
        graph = getattr(graph_module, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        for node in graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            target = node.target
            if node.op != "call_function" or not (
                (
                    isinstance(target, torch._ops.OpOverload)
                    and target.namespace == "aten"
                    and target._opname not in _ATEN_DENIED
                )
                or target in allowed
            ):
                raise NeedsTrust(f"a call to {target}, which is no plain tensor operator")
    if not all(plain_guard(code) for code in ep._guards_code or []):
        raise NeedsTrust("guard code (Python source that torch would run) beyond comparisons of input sizes")
