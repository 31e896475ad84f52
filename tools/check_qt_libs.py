"""Does this Linux machine have the system libraries Qt needs to open a window?

Qt's own message when a library is missing ("Could not load the Qt platform plugin xcb")
names the plugin, not the library, and sometimes one that is present. This asks the dynamic
linker (``ldd``) about the platform plugin and the Qt libraries the app loads, and prints the
one command that installs what is missing (Debian / Ubuntu package names). Exit status 0 when
nothing is missing or nothing can be checked, 1 otherwise. Imports no Qt (it could not load).

    python tools/check_qt_libs.py [xcb|wayland]
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

# shared object -> the Debian / Ubuntu package that ships it
PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}
PLUGINS = {"xcb": "libqxcb.so", "wayland": "libqwayland.so"}
LIBRARIES = [
    "libQt6Gui.so.6",
    "libQt6Widgets.so.6",
    "libQt6DBus.so.6",
    "libQt6XcbQpa.so.6",
    "libQt6WaylandClient.so.6",
    "libQt6OpenGL.so.6",
]


def qt_dir() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    return Path(spec.origin).parent / "Qt" if spec and spec.origin else None


def missing_libraries(platform: str = "xcb") -> list[str] | None:
    """Shared objects the linker cannot find for ``platform``; None when it cannot tell."""
    qt = qt_dir()
    ldd = shutil.which("ldd")
    if qt is None or ldd is None or not sys.platform.startswith("linux"):
        return None
    files = [qt / "plugins" / "platforms" / PLUGINS[platform]]
    files += [
        qt / "lib" / name
        for name in LIBRARIES
        if (platform in name.lower()) or not any(p in name.lower() for p in ("xcb", "wayland"))
    ]
    missing: list[str] = []
    for path in files:
        if not path.exists():
            continue
        out = subprocess.run([ldd, str(path)], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if "=> not found" in line:
                name = line.split("=>")[0].strip()
                if name not in missing:
                    missing.append(name)
    return missing


def main(argv: list[str]) -> int:
    platform = (
        argv[0]
        if argv
        else ("wayland" if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY") else "xcb")
    )
    missing = missing_libraries(platform)
    if not missing:
        return 0
    packages = sorted({PACKAGES.get(name, "") for name in missing} - {""})
    unknown = [name for name in missing if name not in PACKAGES]
    print(f"Qt cannot open a window here: missing system libraries {', '.join(missing)}.", file=sys.stderr)
    if packages:
        sudo = "" if os.geteuid() == 0 else "sudo "
        print(f"Install them with:\n    {sudo}apt-get install -y {' '.join(packages)}", file=sys.stderr)
    if unknown:
        print(
            f"(for {', '.join(unknown)}: `apt-file search <name>` tells which package has it)",
            file=sys.stderr,
        )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
