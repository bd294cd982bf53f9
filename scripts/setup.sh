#!/usr/bin/env bash
# Idempotent setup: system packages (Debian) and a Python virtual environment kept outside
# the clone, keyed by a hash of requirements.txt, so fresh clones on a warm machine reuse it.
# Prints the venv path as its last line.  Usage: source <(scripts/setup.sh --env) or scripts/setup.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_packages=(chromium espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox
              libsox-fmt-all libfluidsynth3 fluid-soundfont-gm timgm6mb-soundfont
              musescore-general-soundfont-small csound-soundfont opl3-soundfont
              avldrums.lv2-soundfont libsndfile1 ffmpeg g++ ninja-build)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "setup: missing system packages (install them as root): ${missing[*]}" >&2
  fi
fi
hash="$(cat "$root/requirements.txt" | sha256sum | cut -c1-12)"
venv="${DIFFRES_VENV:-$HOME/.cache/diffres-explorer/venv-$hash}"
if [ ! -f "$venv/.complete" ]; then
  echo "setup: building virtual environment $venv (a few minutes, once)" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2 || true
  "$venv/bin/pip" install -q -r "$root/requirements.txt" >&2
  touch "$venv/.complete"
fi
# The fused CPU merge kernel: compiled once per machine and source (a no-op when built).
# Optional: without it DiffRes uses its PyTorch merge path.
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" -m diffres build-ext >&2 \
  || echo "setup: the fused merge kernel did not build; DiffRes falls back to its PyTorch path" >&2
echo "$venv"
