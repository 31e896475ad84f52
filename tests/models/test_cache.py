"""Where the cache lives on each platform, the override, and clearing only our own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import cache
from models.topk import Store, scan
from tests.models.topk_folders import bars_folder, edge_model


@pytest.mark.parametrize(
    ("platform", "env", "want"),
    [
        ("linux", {}, "~/.cache/convscope"),
        ("linux", {"XDG_CACHE_HOME": "/x/cache"}, "/x/cache/convscope"),
        ("linux", {"XDG_CACHE_HOME": "relative/ignored"}, "~/.cache/convscope"),
        ("darwin", {}, "~/Library/Caches/ConvScope"),
        ("win32", {"LOCALAPPDATA": "/c/Users/me/AppData/Local"}, "/c/Users/me/AppData/Local/ConvScope/Cache"),
        ("linux", {"CONVSCOPE_CACHE": "/elsewhere"}, "/elsewhere"),
        ("darwin", {"CONVSCOPE_CACHE": "/elsewhere"}, "/elsewhere"),
    ],
)
def test_cache_dir_follows_the_platform(monkeypatch, platform, env, want) -> None:
    for name in ("CONVSCOPE_CACHE", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cache.sys, "platform", platform)
    assert cache.cache_dir() == Path(want).expanduser()


def test_clear_cache_removes_the_store_and_nothing_else(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "shared"))
    bars_folder(tmp_path / "imgs", vertical=2, horizontal=2, blank=0)
    store = Store()
    scan(edge_model(), tmp_path / "imgs", "reference", k=2, store=store)
    (tmp_path / "shared" / "mine.txt").write_text("not ConvScope's")
    assert (tmp_path / "shared" / "topk.sqlite3").exists()
    removed = cache.clear_cache()
    assert tmp_path / "shared" / "topk.sqlite3" in removed
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["mine.txt"]
    again = scan(edge_model(), tmp_path / "imgs", "reference", k=2, store=store)  # same object
    assert again.stats.scanned == 4  # nothing left to reuse, and the store is made anew


def test_an_unusable_cache_is_a_one_line_error(tmp_path, monkeypatch) -> None:
    from models.topk.store import StoreError

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "a-file" / "cache"))
    bars_folder(tmp_path / "imgs", vertical=1, horizontal=0, blank=0)
    # the path that is in the way is named, not mkdir's "[Errno 17] File exists"
    with pytest.raises(
        StoreError,
        match=r"cannot use the top-k cache: .*a-file is a file, not a folder \(move it away, or set "
        r"CONVSCOPE_CACHE",
    ):
        scan(edge_model(), tmp_path / "imgs", "reference", k=2)
