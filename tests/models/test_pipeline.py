"""The window's pipeline without a window: reuse rules, cancel, the comparison with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models import pipeline
from models.errors import Cancelled
from models.pipeline import Models, Request
from models.sources import load_model


@pytest.fixture
def loads() -> list[str]:
    return []


@pytest.fixture
def models(loads) -> Models:
    def loader(name, **kwargs):
        loads.append(name)
        return load_model(name, **kwargs)

    return Models(loader=loader)


def ask(**changes) -> Request:
    base = dict(model="classic", untrained=False, trust=False, image=None, engine="im2col")
    return Request(**(base | changes))


def torch_conv_outputs(model, tensor: torch.Tensor) -> dict[str, np.ndarray]:
    """The oracle: torch's own forward, each conv's output caught by a hook."""
    outputs: dict[str, np.ndarray] = {}
    modules = dict(model.module.named_modules())
    hooks = [
        modules[name].register_forward_hook(
            lambda m, i, o, name=name: outputs.__setitem__(name, o[0].detach().numpy().copy())
        )
        for name, m in modules.items()
        if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model.module(tensor)
    finally:
        for h in hooks:
            h.remove()
    return outputs


def test_the_same_model_is_reused_and_another_is_loaded(models, loads) -> None:
    first = pipeline.run(ask(), None, models)
    assert loads == ["classic"] and first.source == "sample: chelsea"
    again = pipeline.run(ask(engine="fft"), first, models)  # another engine: nothing reloaded
    assert again.model is first.model and again.pil is first.pil and loads == ["classic"]
    assert again.result.engine == "fft"
    trusted = pipeline.run(ask(trust=True), first, models)  # another way of loading: loaded again
    assert trusted.model is not first.model and loads == ["classic", "classic"]


def test_the_same_picture_is_reused_and_another_is_read(models, tmp_path) -> None:
    first = pipeline.run(ask(), None, models)
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "green.png")
    green = pipeline.run(ask(image=str(tmp_path / "green.png")), first, models)
    assert green.pil is not first.pil and green.source == str(tmp_path / "green.png")
    assert green.image.model_view[5, 5].tolist() == [10, 200, 30]
    assert pipeline.run(ask(image=str(tmp_path / "green.png"), engine="fft"), green, models).pil is green.pil
    paste = (Image.new("RGB", (20, 20), (255, 0, 0)), "pasted image")
    pasted = pipeline.run(ask(image="<pasted image>", pasted=paste), green, models)
    assert pasted.pil is paste[0]
    same_pixels = (Image.new("RGB", (20, 20), (255, 0, 0)), "pasted image")  # another paste
    repasted = pipeline.run(ask(image="<pasted image>", pasted=same_pixels), pasted, models)
    assert repasted.pil is same_pixels[0]


def test_a_model_still_in_use_by_a_job_left_behind_is_not_reused(models, loads) -> None:
    first = pipeline.run(ask(), None, models)
    with models.using(first.model):  # a stuck job still runs on it
        second = pipeline.run(ask(engine="fft"), first, models)
    assert second.model is not first.model and loads == ["classic", "classic"]
    assert not models.in_use(first.model) and not models.in_use(second.model)


@pytest.mark.parametrize("after", [0, 1, 3])
def test_cancel_raises_and_leaves_the_previous_outcome_whole(models, after) -> None:
    first = pipeline.run(ask(), None, models)
    comparison = pipeline.compare(first, models)
    first.compared(comparison)
    before = (first.model, first.pil, first.image, first.result, first.comparison)
    calls = [0]

    def cancel() -> bool:
        calls[0] += 1
        return calls[0] > after

    with pytest.raises(Cancelled):
        pipeline.run(ask(engine="fft"), first, models, cancel=cancel)
    assert (first.model, first.pil, first.image, first.result, first.comparison) == before
    assert not models.in_use(first.model)  # nothing is left marked as running
    with pytest.raises(Cancelled):
        pipeline.compare(pipeline.run(ask(engine="fft"), first, models), models, cancel=lambda: True)


def test_the_comparison_is_numpys_max_abs_difference_from_torch(models) -> None:
    outcome = pipeline.run(ask(engine="winograd"), None, models)
    assert outcome.comparison is None and outcome.max_diff is None  # compared after, not during
    comparison = pipeline.compare(outcome, models)
    assert outcome.comparison is None  # compare() changes nothing: the window hands it over
    torch_out = torch_conv_outputs(outcome.model, outcome.image.tensor)
    assert set(torch_out) == set(comparison.diffs) == {"edges", "combine"}
    for name, expected in torch_out.items():
        np.testing.assert_allclose(comparison.reference[name], expected, rtol=0, atol=1e-6)
        assert comparison.diffs[name] == pytest.approx(
            float(np.abs(outcome.result.activations[name] - expected).max()), abs=1e-6
        )
    assert comparison.max_diff == max(comparison.diffs.values()) > 0  # winograd is not exact
    assert comparison.times.keys() == {"edges", "combine"} and comparison.total_ms > 0
    outcome.compared(comparison)
    assert outcome.max_diff == comparison.max_diff


def test_a_reference_run_compares_to_itself_as_zero(models) -> None:
    outcome = pipeline.run(ask(engine="reference"), None, models)
    assert outcome.comparison is not None and outcome.max_diff == 0.0
    assert pipeline.compare(outcome, models).max_diff == 0.0


def test_torchs_outputs_are_reused_for_the_same_model_and_picture_only(models, tmp_path) -> None:
    first = pipeline.run(ask(), None, models)
    first.compared(pipeline.compare(first, models))
    fft = pipeline.run(ask(engine="fft"), first, models)
    assert fft.comparison is not None and fft.reference is first.reference  # torch not run again
    expected = max(float(np.abs(fft.result.activations[n] - a).max()) for n, a in first.reference.items())
    assert fft.max_diff == pytest.approx(expected, abs=0)
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "green.png")
    assert pipeline.run(ask(image=str(tmp_path / "green.png")), first, models).comparison is None


def test_the_status_line_is_composed_from_the_outcome(models) -> None:
    outcome = pipeline.run(ask(), None, models)
    summary = outcome.summary()
    assert summary.startswith("classic on im2col: 6 layers, 2 convolutions in ")
    assert outcome.comparison_text(comparing=True) == " · comparing with torch…"
    assert outcome.comparison_text(comparing=False) == ""
    outcome.compared(pipeline.compare(outcome, models))
    assert outcome.comparison_text(comparing=False) == f" · max |Δ| from torch {outcome.max_diff:.1e}"
    outcome.model.name = "/home/someone/deep/folder/net.pt"  # a model file: its name, not its path
    assert outcome.summary().startswith("net.pt on im2col: ")


def test_torchs_times_are_the_best_of_two_passes(models, monkeypatch) -> None:
    """One slow pass (torch's first of a model, or a busy moment) does not make the engine look
    25x faster than torch in the Engines tab."""
    from models import runner

    outcome = pipeline.run(ask(engine="im2col"), None, models)
    real = runner.run_model
    calls = [0]

    def one_pass_slow(*args, **kwargs):  # the second: a busy moment after a warm first pass
        result = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == 2:
            result.total_ms += 2000.0
            for la in result.layers:
                if la.is_conv:
                    la.time_ms += 50.0
        return result

    monkeypatch.setattr(pipeline, "run_model", one_pass_slow)
    comparison = pipeline.compare(outcome, models)
    assert calls[0] == 2
    assert comparison.total_ms < 2000.0
    assert all(ms < 50.0 for ms in comparison.times.values())
