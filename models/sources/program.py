"""``torch.export`` programs (``.pt2``), loaded without running anything from the file.

``torch.export.load`` is not safe on a stranger's file (its pickles, its ``guards_code``, its
sympy sizes and its operator names all reach code). So an archive is read here with torch's own
zip reader, and every part of it is checked by :mod:`models.sources.program_check` against what a
plain CNN program needs, before torch sees any of it. The checked parts are then deserialized
with torch's own deserializer and turned into a module; the resulting graph is checked once more.
A file outside this subset is refused as :class:`UntrustedModelError` with the reason; with
``trust`` it goes to ``torch.export.load`` as is.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import torch

from models.errors import ModelError, UntrustedModelError, one_line
from models.sources.base import FileOptions, Opened
from models.sources.probe import FileProbe
from models.sources.program_check import (
    NeedsTrust,
    check_graph,
    check_payloads,
    check_program,
    safe_sample_inputs,
)

NAME = "export"

_MODEL = "model"
_FIXED_MEMBERS = {
    "archive_format",
    "archive_version",
    "byteorder",
    ".data/version",
    ".data/serialization_id",
    f"models/{_MODEL}.json",
    f"data/weights/{_MODEL}_weights_config.json",
    f"data/constants/{_MODEL}_constants_config.json",
    f"data/sample_inputs/{_MODEL}.pt",
}


def claims(probe: FileProbe) -> bool:
    return (
        probe.has("archive_format")
        or probe.has_prefix("models/")
        or probe.has("serialized_exported_program.json")
    )  # torch 2.7's layout


def load(probe: FileProbe, options: FileOptions) -> Opened:
    """The program in ``probe``'s file as a module, with the input shape it states (``None`` for
    a dynamic dimension), e.g. ``(1, 3, 224, 224)``.

    Raises :class:`UntrustedModelError` when the file uses anything that could run code from it
    and ``options.trust`` is not given; ``ModelError`` when it is no readable program.
    """
    trust = options.trust
    with _quiet_torch_logs():
        try:
            ep, example = _load_checked(probe)
        except NeedsTrust as why:
            if not trust:
                raise UntrustedModelError(
                    f"{probe.name} is a torch.export program with {why}: loading it could run "
                    f"code from the file"
                ) from None
            ep, example = _load_trusted(probe), None
        try:
            module = ep.module()
        except Exception as exc:
            raise ModelError(f"{probe.name} is not a usable torch.export program: {one_line(exc)}") from None
    return Opened(module, NAME, input_shape=_input_shape(ep, example))


def _load_trusted(probe: FileProbe) -> torch.export.ExportedProgram:
    try:
        with open(probe.path, "rb") as f:  # a file object: torch warns about names not ending .pt2
            return torch.export.load(f)
    except Exception as exc:
        # torch's generic failure points at log lines we keep quiet
        reason = one_line(exc).replace(" Please check the warnings above for possible errors.", "")
        raise ModelError(f"{probe.name} is not a readable torch.export program: {reason}") from None


def _load_checked(probe: FileProbe) -> tuple[torch.export.ExportedProgram, object]:
    try:  # torch's own pieces, as of 2.14.1 (pinned): without them, no checked path at all
        from torch._export.serde import schema
        from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass
        from torch.export.pt2_archive._package import (
            PT2ArchiveReader,
            _load_constants,
            _load_state_dict,
        )
    except ImportError:
        raise NeedsTrust("a torch whose loader ConvScope has not checked") from None

    if probe.has("serialized_exported_program.json"):
        raise NeedsTrust("torch 2.7's layout (its weights are a pickle)")
    try:
        reader = PT2ArchiveReader(str(probe.path))
        members = set(reader.get_file_names())
        version = reader.read_string("archive_version") if "archive_version" in members else "0"
    except Exception as exc:
        raise ModelError(f"{probe.name} is not a readable torch.export program: {one_line(exc)}") from None
    if version != "0":
        raise ModelError(
            f"{probe.name} is a torch.export archive of version {version}, which "
            f"this torch (2.14) does not read"
        )
    missing = sorted(m for m in _FIXED_MEMBERS - {"byteorder", ".data/serialization_id"} if m not in members)
    if missing:
        raise ModelError(f"{probe.name} is not a complete torch.export program: {', '.join(missing)} missing")
    try:
        program = json.loads(reader.read_bytes(f"models/{_MODEL}.json"))
        weights = json.loads(reader.read_bytes(f"data/weights/{_MODEL}_weights_config.json"))
        constants = json.loads(reader.read_bytes(f"data/constants/{_MODEL}_constants_config.json"))
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{probe.name} is not a readable torch.export program: {one_line(exc)}") from None
    payloads = check_payloads(weights, "data/weights/", "weight_") | check_payloads(
        constants, "data/constants/", "tensor_"
    )
    extra = sorted(m for m in members - _FIXED_MEMBERS - payloads if not m.startswith("extra/"))
    if extra:
        raise NeedsTrust(
            f"parts ConvScope does not load from untrusted files ({extra[0]}"
            + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
            + ")"
        )
    check_program(program)
    example = safe_sample_inputs(reader.read_bytes(f"data/sample_inputs/{_MODEL}.pt"))
    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, program)
        state_dict = _load_state_dict(reader, _MODEL)
        tensor_constants = _load_constants(reader, _MODEL)
        ep = ExportedProgramDeserializer().deserialize(serialized, state_dict, tensor_constants, example)
    except NeedsTrust:
        raise
    except Exception as exc:
        raise ModelError(f"{probe.name} is not a readable torch.export program: {one_line(exc)}") from None
    check_graph(ep)
    return ep, example


def _input_shape(ep: torch.export.ExportedProgram, example: object) -> tuple[int | None, ...] | None:
    """The first tensor input's shape as the program states it (``None`` for a dynamic size)."""
    user_inputs = set(ep.graph_signature.user_inputs)
    for node in ep.graph.nodes:
        if node.op != "placeholder" or node.name not in user_inputs:
            continue
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            return tuple(d if isinstance(d, int) else None for d in val.shape)
    if example and example[0] and isinstance(example[0][0], torch.Tensor):
        return tuple(example[0][0].shape)
    return None


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """torch's loader logs tracebacks and warnings (12 lines for a text file named .pt2); the
    user gets our one line instead."""
    loggers = [
        logging.getLogger(name)
        for name in ("torch.export", "torch._export", "torch.fx.experimental.symbolic_shapes")
    ]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
