#!/usr/bin/env bash
# Creates .venv with the project installed. Usage: scripts/bootstrap.sh [extras]   (default: sklearn,pandas)
# On a fresh Debian machine it installs what pip cannot: python3-venv, and for the test extra the
# compiler and cmake that llama-cpp-python needs (its wheel is built once and cached).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-sklearn,pandas}
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  local sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]} (apt)" >&2
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null && command -v dpkg >/dev/null; then
  apt_install python3-venv
fi
if [[ ! -x $VENV/bin/python ]]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip >/dev/null
# Exact versions with hashes (make lock): the test extra's lock for the tests, else the image's.
lock=requirements/sklearn.lock
[[ ,$extras, == *,ollama,* ]] && lock=requirements/ollama.lock
[[ ,$extras, == *,test,* ]] && lock=requirements/test.lock
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
if [[ $lock == requirements/test.lock ]]; then  # see scripts/lock.sh: no resolution holds it
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
    -r requirements/test-nodeps.lock
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e ".[$extras]"

if [[ ,$extras, == *,test,* ]]; then
  # llama-cpp-python has no prebuilt wheel: build it once into a cache that survives clones.
  cache=${KCR_WHEEL_CACHE:-/var/tmp/kcr-wheels}
  mkdir -p "$cache"
  if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
      command -v dpkg >/dev/null && apt_install build-essential cmake
      echo "bootstrap: compiling llama-cpp-python (about 7-10 minutes, cached in $cache)" >&2
      CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/python" -m pip wheel -q --no-deps -w "$cache" llama-cpp-python
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$(ls -t "$cache"/llama_cpp_python-*.whl | head -n1)"
  fi
  # checkov (IaC checks of k8s/ and the Dockerfiles) pins many dependencies: its own venv.
  tools=${KCR_TOOLS_DIR:-/var/tmp/kcr-tools}
  if [[ ! -x $tools/checkov/bin/checkov ]]; then
    echo "bootstrap: installing checkov into $tools/checkov" >&2
    "$PY" -m venv "$tools/checkov"
    "$tools/checkov/bin/python" -m pip install -q --disable-pip-version-check 'checkov>=3.2'
  fi
fi
