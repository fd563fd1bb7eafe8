# Shared by scripts/demo and scripts/test: check prerequisites, create or update .venv.
# Usage: . scripts/_venv.sh EXTRAS   (e.g. "test" or "demo")

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GATEWAYD_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

die() { echo "error: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "python3 not found. Install it: sudo apt-get install python3"
"$PY" - <<'PYEOF' || die "gatewayd needs Python 3.11 or newer (found $("$PY" --version 2>&1)). On Debian 12 / Raspberry Pi OS 12: sudo apt-get install python3"
import sys
raise SystemExit(0 if sys.version_info >= (3, 11) else 1)
PYEOF
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c "import venv, ensurepip" 2>/dev/null \
    || die "the Python venv module is missing. Install it: sudo apt-get install python3-venv"
  echo "creating virtual environment in $VENV"
  "$PY" -m venv "$VENV" || die "could not create $VENV. Install: sudo apt-get install python3-venv"
fi

# Reinstall only when pyproject.toml changed since the last install.
STAMP="$VENV/.gatewayd-$1.stamp"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  echo "installing gatewayd[$1] into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$1]" \
    || die "pip install failed (see above). Check network access to PyPI."
  touch "$STAMP"
fi
