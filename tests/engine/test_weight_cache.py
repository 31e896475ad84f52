"""weight_key: what an engine derives from the weights is reused while the key stays the same,
never for other weights, and the cache stays within its byte budget."""

from __future__ import annotations

import numpy as np
import pytest

from engine import _weight_cache, available_engines, get_engine
from engine.auto import AutoEngine
from engine.fft import FFTEngine
from engine.winograd import WinogradEngine, filter_transform
from tests.conftest import assert_conv_close


def _case(seed: int = 0, c: int = 8, o: int = 6, size: int = 12, k: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, c, size, size), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.3
    b = rng.standard_normal(o, dtype=np.float32)
    return x, w, b


@pytest.fixture
def winograd() -> WinogradEngine:
    engine = WinogradEngine()
    yield engine
    engine.clear_weight_cache()


def test_a_repeated_key_hits_the_cache(winograd: WinogradEngine) -> None:
    x, w, b = _case()
    first = winograd.run(x, w, b, 1, 1, weight_key=("model", "conv1", 0))
    info = winograd.weight_cache_info()
    assert (info.hits, info.misses, info.entries) == (0, 1, 1)
    assert info.bytes == filter_transform(w, _spec(x, w), 4).nbytes  # U = G g G^T, 36 x O x C
    second = winograd.run(x * 2, w, b, 1, 1, weight_key=("model", "conv1", 0))
    assert winograd.weight_cache_info().hits == 1
    assert first.algorithm == second.algorithm == "winograd F(4x4,3x3)"
    np.testing.assert_array_equal(second.output, winograd.run(x * 2, w, b, 1, 1).output)
    assert_conv_close(second.output, get_engine("reference").conv2d(x * 2, w, b, 1, 1))


def _spec(x: np.ndarray, w: np.ndarray):
    from engine import make_spec

    return make_spec(x.shape, w.shape, None, 1, 1)


def test_new_weights_under_a_new_key_give_the_new_result(winograd: WinogradEngine) -> None:
    """What the routing layer does when the user loads other weights: the parameter's version
    (part of the key) changes, so the old transform is not used."""
    x, w, b = _case()
    winograd.run(x, w, b, 1, 1, weight_key=("model", "conv1", 0))
    w[:] = _case(seed=1)[1]  # in place, as load_state_dict does; the version changes with it
    out = winograd.run(x, w, b, 1, 1, weight_key=("model", "conv1", 1)).output
    assert_conv_close(out, get_engine("reference").conv2d(x, w, b, 1, 1))
    assert winograd.weight_cache_info().misses == 2


def test_without_a_key_nothing_is_cached(winograd: WinogradEngine) -> None:
    x, w, b = _case()
    winograd.run(x, w, b, 1, 1)
    w += 1.0  # the same buffer, new values: no key, so nothing can be stale
    out = winograd.run(x, w, b, 1, 1).output
    assert_conv_close(out, get_engine("reference").conv2d(x, w, b, 1, 1))
    assert winograd.weight_cache_info() == (0, 0, 0, 0, _weight_cache.SHARED.limit_bytes)


def test_one_key_holds_each_tile_size_apart(winograd: WinogradEngine) -> None:
    """F(2x2) for a small map and F(4x4) for a big one: two transforms, neither mistaken for the
    other."""
    _, w, b = _case()
    small, big = _case(size=5)[0], _case(size=20)[0]
    for x in (small, big, small, big):
        out = winograd.run(x, w, b, 1, 1, weight_key="same weights").output
        assert_conv_close(out, get_engine("reference").conv2d(x, w, b, 1, 1))
    info = winograd.weight_cache_info()
    assert (info.entries, info.misses, info.hits) == (2, 2, 2)


def test_cached_transforms_are_read_only(winograd: WinogradEngine) -> None:
    x, w, b = _case()
    winograd.run(x, w, b, 1, 1, weight_key="k")
    ((value, _),) = [v for k, v in _weight_cache.SHARED._entries.items() if k[0] == winograd._owner]
    assert not value.flags.writeable


def test_clear_weight_cache_forgets_this_engine_only(winograd: WinogradEngine) -> None:
    other = WinogradEngine()
    x, w, b = _case()
    winograd.run(x, w, b, 1, 1, weight_key="k")
    other.run(x, w, b, 1, 1, weight_key="k")
    winograd.clear_weight_cache()
    assert winograd.weight_cache_info().entries == 0
    assert other.weight_cache_info().entries == 1
    other.clear_weight_cache()


def test_the_cache_is_bounded_in_bytes_least_recently_used_first() -> None:
    cache = _weight_cache.WeightCache(limit_bytes=3000)
    block = lambda: np.zeros(250, np.float32)  # noqa: E731 - 1000 bytes
    for key in "abc":
        cache.get(1, key, "t", block)
    cache.get(1, "a", "t", block)  # a is now the most recently used
    cache.get(1, "d", "t", block)  # evicts b
    assert cache.total_bytes == 3000
    assert [k[1] for k in cache._entries] == ["c", "a", "d"]
    cache.get(1, "huge", "t", lambda: np.zeros(1000, np.float32))  # over the budget: not stored
    assert [k[1] for k in cache._entries] == ["c", "a", "d"]
    cache.set_limit(1500)
    assert [k[1] for k in cache._entries] == ["d"] and cache.total_bytes == 1000
    info = cache.info(1)
    assert (info.hits, info.misses, info.entries, info.bytes, info.limit_bytes) == (1, 5, 1, 1000, 1500)
    with pytest.raises(ValueError, match="must be >= 0 bytes, got -1"):
        cache.set_limit(-1)


def test_a_small_budget_still_gives_right_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries evicted (or too big to keep) are rebuilt: the results never change."""
    engine = WinogradEngine()
    monkeypatch.setattr(_weight_cache, "SHARED", _weight_cache.WeightCache(limit_bytes=20_000))
    for seed in (0, 1, 0, 1, 2):
        x, w, b = _case(seed=seed, c=4, o=4)
        out = engine.run(x, w, b, 1, 1, weight_key=seed).output
        assert_conv_close(out, get_engine("reference").conv2d(x, w, b, 1, 1))
    assert _weight_cache.SHARED.total_bytes <= 20_000


def test_fft_caches_kernel_spectra_per_key() -> None:
    engine = FFTEngine()
    x, w, b = _case(k=5, size=16)
    first = engine.run(x, w, b, 1, 2, weight_key="k").output
    second = engine.run(x, w, b, 1, 2, weight_key="k").output
    info = engine.weight_cache_info()
    assert (info.misses, info.hits) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert_conv_close(second, get_engine("reference").conv2d(x, w, b, 1, 2))
    engine.clear_weight_cache()


def test_auto_passes_the_key_to_what_it_chose_and_sums_the_counts() -> None:
    auto = AutoEngine()
    x, w, b = _case(size=24)
    for _ in range(3):
        result = auto.run(x, w, b, 1, 1, weight_key="k")
        assert_conv_close(result.output, get_engine("reference").conv2d(x, w, b, 1, 1))
    info = auto.weight_cache_info()
    # both tile sizes were measured (three turns each): each built its transform once
    assert info.misses == 2 and info.entries == 2
    assert info.hits >= 4
    auto.clear_weight_cache()
    assert auto.weight_cache_info().entries == 0


@pytest.mark.parametrize("name", available_engines())
def test_every_engine_accepts_a_weight_key(name: str) -> None:
    x, w, b = _case()
    engine = get_engine(name)
    out = engine.conv2d(x, w, b, 1, 1, weight_key=(name, "layer", 0))
    assert_conv_close(out, get_engine("reference").conv2d(x, w, b, 1, 1))
    engine.clear_weight_cache()
