"""tools/check_qt_libs.py names what the dynamic linker cannot find and the packages to install."""

from __future__ import annotations

import importlib.util
import stat
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("check_qt_libs", ROOT / "tools" / "check_qt_libs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_ldd(tmp_path: Path, missing: list[str]) -> str:
    script = tmp_path / "ldd"
    lines = "".join(f"echo '\\t{name} => not found'\n" for name in missing)
    script.write_text("#!/bin/sh\necho '\\tlibc.so.6 => /lib/libc.so.6'\n" + lines)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_missing_libraries_give_one_install_command(tmp_path, monkeypatch, capsys) -> None:
    tool = _tool()
    ldd = _fake_ldd(tmp_path, ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libweird.so.9"])
    monkeypatch.setattr(tool.shutil, "which", lambda name: ldd if name == "ldd" else None)
    monkeypatch.setattr(tool.sys, "platform", "linux")
    assert tool.main(["xcb"]) == 1
    err = capsys.readouterr().err
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libweird.so.9" in err
    assert "apt-get install -y libxcb-icccm4 libxcb-keysyms1\n" in err
    assert "apt-file search" in err  # the one it has no package for


def test_nothing_missing_is_silent(tmp_path, monkeypatch, capsys) -> None:
    tool = _tool()
    ldd = _fake_ldd(tmp_path, [])
    monkeypatch.setattr(tool.shutil, "which", lambda name: ldd if name == "ldd" else None)
    assert tool.main(["xcb"]) == 0 or not sys.platform.startswith("linux")
    assert capsys.readouterr().err == ""
