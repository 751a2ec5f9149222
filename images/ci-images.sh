#!/usr/bin/env bash
# CI entry point for the image tests: builds both images with rootful podman and checks them
# (tests/deploy/test_images.py), plus the static manifest checks (tests/deploy/test_manifests.py).
#   bash images/ci-images.sh            # amd64 + arm64 (sklearn under qemu); ~8 min warm, ~12 min cold
#   KCR_IMAGE_TESTS_ARM64=0 bash images/ci-images.sh   # amd64 only (~3 min warm)
# Needs: root, Debian apt (podman, buildah, runc, debootstrap, qemu-user-static are installed by
# ../shared/tools/container-env.sh), the project venv with '.[test]' (+ kubernetes-validate; checkov is
# optional: KCR_CHECKOV=/path/to/checkov). Sizes and timings: $KCR_IMAGE_REPORT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [[ -z $PY ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export KCR_SHARED_DIR=${KCR_SHARED_DIR:-$(cd .. && pwd)/shared}
[[ -f $KCR_SHARED_DIR/tools/container-env.sh ]] || KCR_SHARED_DIR=/work/shared
export KCR_IMAGE_TESTS=1 KCR_IMAGE_TESTS_ARM64=${KCR_IMAGE_TESTS_ARM64:-1}
export KCR_IMAGE_REPORT=${KCR_IMAGE_REPORT:-/tmp/kcr-image-report.json}
export KCR_TEST_LOGS=${KCR_TEST_LOGS:-/tmp/kcr-test-logs}
rm -f "$KCR_IMAGE_REPORT"
arm=()
[[ $KCR_IMAGE_TESTS_ARM64 == 1 ]] && arm=(--arm64)
start=$(date +%s)
# Once per machine (~4 min with --arm64, then seconds): podman quirks + local Debian/Python base images.
eval "$(bash "$KCR_SHARED_DIR/tools/container-env.sh" "${arm[@]}")"
echo "ci-images: container environment ready after $(( $(date +%s) - start ))s" >&2
status=0
"$PY" -m pytest tests/deploy -v -p no:cacheprovider -o addopts="" --timeout 1800 "$@" || status=$?
echo "ci-images: report ($KCR_IMAGE_REPORT):" >&2
cat "$KCR_IMAGE_REPORT" >&2 || true
echo "ci-images: total $(( $(date +%s) - start ))s, pytest exit $status" >&2
exit "$status"
