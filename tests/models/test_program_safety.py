"""A ``.pt2`` from a stranger runs nothing unless the user trusts it, whatever its name; a clean
program of a catalog model loads without being asked."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from models.errors import ModelError, UntrustedModelError
from models.sources import load_model
from tests.models.pt2_traps import TRAPS, clean_program, trapped_program

# traps torch 2.14.1's own loader falls into (proved below); the others are refused all the same
PROVEN = ["sample_inputs", "pickled_weight", "guards_code", "sympy_size", "parameter_name", "pytree_import"]


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "ran"
    assert "." not in str(path)  # the parameter-name trap cannot carry a dot
    monkeypatch.syspath_prepend(str(tmp_path))  # where the pytree trap's module is written
    return path


@pytest.mark.parametrize("trap", PROVEN)
def test_each_trap_runs_its_payload_in_torch_export_load(trap, tmp_path, marker) -> None:
    # the oracle: the archive really is booby-trapped (torch's loader, or the module it returns)
    path = trapped_program(trap, tmp_path / "m.pt2", marker)
    logging.disable(logging.CRITICAL)  # torch logs the failures that follow some payloads
    try:
        module = torch.export.load(str(path)).module()
        module(torch.randn(1, 3, 16, 16))
    except Exception:
        pass  # the payload ran before torch noticed anything wrong
    finally:
        logging.disable(logging.NOTSET)
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
@pytest.mark.parametrize("trap", list(TRAPS))
def test_a_trapped_program_runs_nothing_without_trust(trap, suffix, tmp_path, marker) -> None:
    path = trapped_program(trap, tmp_path / f"m{suffix}", marker)
    with pytest.raises(UntrustedModelError) as info:
        load_model(str(path))
    assert not marker.exists()
    message = str(info.value)
    assert "\n" not in message and path.name in message and "torch.export program" in message
    assert "--trust-model" not in message  # the front end adds its own remedy


def test_trust_hands_the_file_to_torch(tmp_path, marker) -> None:
    path = trapped_program("guards_code", tmp_path / "m.pt2", marker)
    model = load_model(str(path), trust=True)
    assert marker.exists()  # trusting the file is allowing its code: torch's loader ran it
    assert model.source == "export"


@pytest.mark.parametrize("name", ["classic", "resnet18"])
@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_a_clean_catalog_program_loads_without_a_question(name, suffix, tmp_path) -> None:
    net = load_model(name, untrained=True).module
    x = torch.randn(1, 3, 224, 224)
    torch.export.save(torch.export.export(net, (x,)), tmp_path / f"{name}{suffix}")
    model = load_model(str(tmp_path / f"{name}{suffix}"))
    assert model.source == "export" and model.preprocess.size == (224, 224)
    assert model.preprocess.channels == 3
    with torch.no_grad():
        torch.testing.assert_close(model.module(x), net(x))


def test_a_program_with_a_dynamic_batch_and_size_loads_without_a_question(tmp_path) -> None:
    from torch.export import Dim

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    program = torch.export.export(
        net, (torch.randn(2, 3, 32, 32),), dynamic_shapes=({0: Dim("batch"), 2: Dim("h", min=8, max=512)},)
    )
    torch.export.save(program, tmp_path / "dyn.pt2")
    model = load_model(str(tmp_path / "dyn.pt2"), input_size=(40, 32))
    assert model.preprocess.size == (40, 32)
    x = torch.randn(1, 3, 40, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.module(x), net(x))
    with pytest.raises(ModelError, match="exported for"):
        load_model(str(tmp_path / "dyn.pt2"), input_size=(40, 48))  # its width is fixed


def test_a_program_for_a_batch_of_two_says_so(tmp_path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3)).eval()
    torch.export.save(torch.export.export(net, (torch.randn(2, 3, 16, 16),)), tmp_path / "b2.pt2")
    with pytest.raises(ModelError, match="exported for a batch of 2"):
        load_model(str(tmp_path / "b2.pt2"))


def test_torch_logs_nothing_for_a_broken_program(tmp_path, capfd) -> None:
    path = clean_program(tmp_path / "m.pt2")
    (tmp_path / "text.pt2").write_text("hello, I am text")
    data = path.read_bytes()
    (tmp_path / "cut.pt2").write_bytes(data[: len(data) // 2])
    for name, words in (("text.pt2", "not a model file"), ("cut.pt2", "damaged or truncated")):
        with pytest.raises(ModelError, match=words):
            load_model(str(tmp_path / name))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Symbol('s16', positive=True, integer=True)", True),
        (
            "Mul(Integer(120), Max(Integer(1), Add(Symbol('s16', positive=True, integer=True), "
            "Integer(-2))))",
            True,
        ),
        ("FloorDiv(Symbol('s0', positive=True, integer=True), Integer(2))", True),
        ("__import__('os').system('true')", False),
        ("exec(chr(112)+chr(114))", False),  # no quotes needed to build a string: calls are listed
        ("Integer(1).evalf()", False),  # no attribute access
        ("Symbol('s0', positive=True).__class__", False),
        ("Symbol('os')", False),  # a quoted string is a size symbol's name: letters then digits
        ("Integer(1)" + " + Integer(1)" * 2000, False),  # too long to parse in reasonable time
    ],
)
def test_size_expressions_are_sympy_of_listed_names_only(text, plain) -> None:
    from models.sources.program_check import plain_sympy as _plain_sympy

    assert _plain_sympy(text) is plain


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Pow(Symbol('s0', positive=True, integer=True), Integer(2))", True),  # a flattened H*W
        ("Pow(Integer(10), Pow(Integer(10), Integer(10)))", False),  # sympy would work for hours
        ("Pow(Integer(10), Integer(100000))", False),
        ("Integer(" + "9" * 40 + ")", False),
    ],
)
def test_size_expressions_are_bounded(text, plain) -> None:
    from models.sources.program_check import plain_sympy as _plain_sympy

    assert _plain_sympy(text) is plain


@pytest.mark.parametrize(
    ("code", "plain"),
    [
        ("L['x'].size()[3] == L['x'].size()[2]", True),
        ("(1 + (((-1) + L['x'].size()[3]) // 2)) != 1", True),
        ("open('/tmp/x', 'w').close() is None", False),
        ("L['x'].__class__ is None", False),
        ("L['x'].size()[3] ** 10 ** 10 == 1", False),
        ("L['x'].size(9)[0] == 1", False),
        ("L[__import__('os').name].size()[0] == 1", False),
    ],
)
def test_guards_are_size_arithmetic_only(code, plain) -> None:
    from models.sources.program_check import plain_guard as _plain_guard

    assert _plain_guard(code) is plain


def test_a_program_with_a_square_dynamic_size_loads_without_a_question(tmp_path) -> None:
    # one Dim for height and width: torch writes the guard "L['x'].size()[3] == L['x'].size()[2]"
    from torch.export import Dim

    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    side = Dim("side", min=16, max=512)
    program = torch.export.export(net, (torch.randn(1, 3, 32, 32),), dynamic_shapes=({2: side, 3: side},))
    assert program._guards_code  # the oracle: this program has guard code
    torch.export.save(program, tmp_path / "square.pt2")
    model = load_model(str(tmp_path / "square.pt2"), input_size=(48, 48))
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model.module(x), net(x))


class _MapsAFile(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # maps the file read-write (creating it) and fills it; the result is used, or
        # TorchScript would drop the call
        t = torch.from_file(self.path, shared=True, size=16, dtype=torch.uint8)
        t.fill_(65)
        return self.conv(x) + t[0].float() * 0


class _SavesAFile(_MapsAFile):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.path)
        return self.conv(x)


@pytest.mark.parametrize("op", ["from_file", "save"])
def test_a_torchscript_model_that_touches_files_needs_trust(op, tmp_path) -> None:
    marker = tmp_path / "written"
    made = _MapsAFile if op == "from_file" else _SavesAFile
    scripted = torch.jit.script(made(str(marker)).eval())
    path = tmp_path / "model.pt"
    scripted.save(str(path))
    scripted(torch.randn(1, 3, 8, 8))  # the oracle: running the script writes the file
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UntrustedModelError, match=f"aten::{op}") as info:
        load_model(str(path))
    assert "\n" not in str(info.value) and not marker.exists()
    model = load_model(str(path), trust=True)  # the user's word: their file, their code
    assert model.source == "torchscript"


def test_a_plain_scripted_and_traced_model_loads_without_a_question(tmp_path) -> None:
    net = load_model("resnet18", untrained=True).module
    torch.jit.script(net).save(str(tmp_path / "s.pt"))
    torch.jit.trace(net, torch.randn(1, 3, 64, 64)).save(str(tmp_path / "t.pt"))
    for name in ("s.pt", "t.pt"):
        assert load_model(str(tmp_path / name)).source == "torchscript"
