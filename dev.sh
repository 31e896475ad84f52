#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv/ (once; again only when pyproject.toml
# changes) and then runs the app or the whole test suite.
#   ./dev.sh run [IMAGE] [main.py options...]
#   ./dev.sh test [pytest options...]
set -euo pipefail
cd "$(dirname "$0")"

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
    done
fi
[ -n "$python_bin" ] || { echo "error: Python 3.11 not found" >&2; exit 2; }

if [ ! -x .venv/bin/python ]; then
    "$python_bin" -m venv .venv
fi
stamp=.venv/.convscope-installed
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # plain pip (README: "Download size" says how to get the small CPU build of torch first);
    # pip's and the build backend's notes (setuptools warns on every editable install) are
    # shown only if the install fails
    if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
        .venv/bin/python -m pip install --quiet -e '.[test]'; } 2> .venv/pip-install.log; then
        cat .venv/pip-install.log >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

command="${1:-run}"
shift || true
case "$command" in
    run)
        # a window needs Qt's system libraries: name the missing ones and the install command
        # (Qt's own message names the plugin, not the library); headless runs need none
        case "${QT_QPA_PLATFORM:-}|$*" in
            offscreen*|minimal*|vnc*|*--export*|*--screenshot*) ;;
            *) .venv/bin/python tools/check_qt_libs.py || exit 2 ;;
        esac
        exec .venv/bin/python main.py "$@"
        ;;
    test)
        .venv/bin/ruff format --check .
        .venv/bin/ruff check .
        .venv/bin/lint-imports
        export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh run [args] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
