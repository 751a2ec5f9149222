# Versions of the walkthrough's stack (sourced by the other scripts; the Helm chart versions are also
# pinned in k8s/platform/*.yaml, which tests/deploy/test_manifests.py checks against this list).
KIND_CLUSTER=${KIND_CLUSTER:-kcr}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.35.0}
CILIUM_VERSION=${CILIUM_VERSION:-1.19.3}
METRICS_SERVER_CHART=3.13.0
CERT_MANAGER_VERSION=v1.20.2
ISTIO_VERSION=1.29.2
KNATIVE_VERSION=1.22.0
KSERVE_VERSION=v0.18.0
GATEWAY_PORT=${GATEWAY_PORT:-31080}   # Istio ingress NodePort, mapped to 127.0.0.1 by k8s/kind/cluster.yaml
NAMESPACE=${NAMESPACE:-kcr-demo}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
need() { for c in "$@"; do command -v "$c" >/dev/null || { log "missing tool: $c"; exit 1; }; done; }
