#!/usr/bin/env bash
# Kind cluster (control plane + system worker + inference worker) with Cilium as the CNI.
# Idempotent: an existing cluster is reused. Needs kind, kubectl, helm, and Docker or podman
# (KIND_EXPERIMENTAL_PROVIDER=podman for podman).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/k8s/scripts/versions.sh"
need kind kubectl helm

if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  log "kind cluster $KIND_CLUSTER exists"
else
  log "creating kind cluster $KIND_CLUSTER ($KIND_NODE_IMAGE, 3 nodes, no default CNI)"
  kind create cluster --name "$KIND_CLUSTER" --config "$ROOT/k8s/kind/cluster.yaml" --wait 0s
fi
kubectl config use-context "kind-$KIND_CLUSTER" >/dev/null

# Cilium first: nodes stay NotReady (and Flux cannot start) without a CNI. Installed with helm directly.
log "installing Cilium $CILIUM_VERSION"
helm repo add cilium https://helm.cilium.io >/dev/null 2>&1 || true
helm repo update cilium >/dev/null
helm upgrade --install cilium cilium/cilium --version "$CILIUM_VERSION" --namespace kube-system \
  --set image.pullPolicy=IfNotPresent --set ipam.mode=kubernetes --set operator.replicas=1 --wait --timeout 10m
kubectl wait node --all --for=condition=Ready --timeout=5m
kubectl get nodes -L workload
