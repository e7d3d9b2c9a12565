#!/usr/bin/env bash
# Create (or refresh) the two Python environments tna needs. Idempotent: a stamp file per
# environment records a hash of what was asked for; nothing is reinstalled while it matches.
#   .venv       Python 3.11: training (torch, norse, nir, nirtorch, tonic, ...) + the tna package
#   .venv-lava  Python 3.10: Lava (lava-nc, lava-dl, nir, h5py, numpy<2), no torch
set -euo pipefail
cd "$(dirname "$0")/.."

TRAIN_PY=${TNA_TRAIN_PYTHON:-python3.11}
LAVA_VENV=${TNA_LAVA_VENV:-.venv-lava}

find_python310() {
  if [ -n "${TNA_PYTHON310:-}" ]; then echo "$TNA_PYTHON310"; return; fi
  if python3.10 -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
    command -v python3.10; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    for p in "$(pyenv root)"/versions/3.10*/bin/python3.10; do
      [ -x "$p" ] && { echo "$p"; return; }
    done
  fi
  return 1
}

# pip, quietly: this machine's pip config adds find-links that print a warning per package.
pip_q() {
  local py=$1; shift
  local log; log=$(mktemp)
  if ! "$py" -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"
    echo "error: 'pip install $*' failed for $py (output above); fix it and run 'make setup' again" >&2
    exit 1
  fi
  rm -f "$log"
}

stamp_of() { cat "$0" pyproject.toml 2>/dev/null | sha1sum | cut -d' ' -f1; }

# ---- training environment --------------------------------------------------------------------
if [ "$(cat .venv/.tna-stamp 2>/dev/null)" != "$(stamp_of)" ]; then
  echo "[setup] training environment .venv ($TRAIN_PY)"
  command -v "$TRAIN_PY" >/dev/null || { echo "error: $TRAIN_PY not found; install Python 3.11 or set TNA_TRAIN_PYTHON=/path/to/python3.11" >&2; exit 1; }
  [ -x .venv/bin/python ] || "$TRAIN_PY" -m venv .venv
  pip_q .venv/bin/python --upgrade pip
  # torch + torchvision from the same build (torchvision is used for CIFAR); norse without its
  # deps so pip does not pick another torch.
  pip_q .venv/bin/python "torch==2.14.1" "torchvision==0.29.1"
  pip_q .venv/bin/python --no-deps "norse==1.1.0"
  pip_q .venv/bin/python -e ".[dev]"
  stamp_of > .venv/.tna-stamp
fi

# ---- Lava environment ------------------------------------------------------------------------
if [ "$(cat "$LAVA_VENV"/.tna-stamp 2>/dev/null)" != "$(stamp_of)" ]; then
  PY310=$(find_python310) || { echo "error: Python 3.10 not found (Lava needs it); install it (e.g. 'pyenv install 3.10') or set TNA_PYTHON310=/path/to/python3.10" >&2; exit 1; }
  echo "[setup] Lava environment $LAVA_VENV ($PY310)"
  [ -x "$LAVA_VENV/bin/python" ] || "$PY310" -m venv "$LAVA_VENV"
  pip_q "$LAVA_VENV/bin/python" --upgrade pip
  pip_q "$LAVA_VENV/bin/python" --no-deps "lava-nc==0.10.0" "lava-dl==0.6.0"
  pip_q "$LAVA_VENV/bin/python" "numpy>=1.24.4,<2" "scipy>=1.10.1,<2" "networkx<=2.8.7" \
      "asteval>=0.9.31,<0.10" "scikit-learn>=1.5,<1.7" "nir>=1.0" h5py
  # lava wheels ship a top-level 'tests' package that would shadow ours; drop it.
  rm -rf "$("$LAVA_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tests"
  echo "[setup] Lava smoke test (a tiny LIF network in floating_pt and fixed_pt)"
  "$LAVA_VENV/bin/python" deploy/lavanet/smoke.py || { echo "error: the Lava environment does not run; see above" >&2; exit 1; }
  stamp_of > "$LAVA_VENV"/.tna-stamp
fi
