#!/usr/bin/env bash
# Installs what crossview needs, idempotently: Debian packages (Eigen, doctest, Google Benchmark,
# OpenCV, CLI11, nlohmann-json, ccache) and a project-local Python virtual environment holding the
# pinned PyPI `torch` (libtorch for C++, found through torch.utils.cmake_prefix_path) and
# `torchvision` (the reference for deformable-convolution tests).
#
# Usage: cmake/install_deps.sh            (from anywhere; the venv lands in <repo>/.venv)
# Environment: CROSSVIEW_VENV overrides the venv location, CROSSVIEW_SKIP_APT=1 skips apt.
set -euo pipefail

readonly TORCH_VERSION=2.14.1        # CUDA 13 build, matching nvcc 13.0
readonly TORCHVISION_VERSION=0.29.2  # the torchvision release built against that torch
readonly APT_PACKAGES=(libeigen3-dev doctest-dev libbenchmark-dev libopencv-dev libcli11-dev
                       nlohmann-json3-dev ccache)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CROSSVIEW_VENV:-$repo_root/.venv}"

log() { printf '[install_deps] %s\n' "$*" >&2; }

# ---- Debian packages --------------------------------------------------------------------------
if [[ "${CROSSVIEW_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi

# ---- Python virtual environment with torch + torchvision ---------------------------------------
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
have_version() { "$venv/bin/python" -c "import importlib.metadata as m,sys; sys.exit(m.version('$1')!='$2')" 2>/dev/null; }
if ! have_version torch "$TORCH_VERSION" || ! have_version torchvision "$TORCHVISION_VERSION" \
   || ! "$venv/bin/python" -c "import pytest, numpy" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION pytest numpy into $venv (large download, once)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" pytest numpy
fi
log "dependencies ready (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
