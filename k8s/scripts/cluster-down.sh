#!/usr/bin/env bash
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/k8s/scripts/versions.sh"
need kind
kind delete cluster --name "$KIND_CLUSTER"
