"""Which operators a model file may call without the user's trust.

A TorchScript or ``torch.export`` model is code for torch's interpreter, and a few of torch's
own operators reach outside the tensors: ``aten::from_file`` maps any file by name (read-write,
and creates it, with ``shared=True``), ``aten::save`` writes one. A model that calls any operator
taking a file name is treated as one that can run code: it needs the user's trust.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def file_operators() -> frozenset[str]:
    """Qualified names (``aten::from_file``) of every operator with a file-name argument."""
    names = set()
    for schema in torch._C._jit_get_all_schemas():
        if any(
            a.name in ("filename", "file", "path", "filepath") and "str" in str(a.type)
            for a in schema.arguments
        ):
            names.add(schema.name)
    return frozenset(names | {"aten::from_file", "aten::save"})


def plain_operator(kind: str) -> bool:
    """An operator a model may call untrusted: torch's own tensor operators (``aten::``) and
    the interpreter's primitives (``prim::``), none that touches files."""
    namespace = kind.split("::", 1)[0]
    return namespace in ("aten", "prim") and kind not in file_operators()
