#!/usr/bin/env bash
# The platform stack, the walkthrough's way: Flux HelmReleases for every chart (metrics-server,
# cert-manager, Istio, Knative Operator, KServe's three charts), the rest imperative. Handles its pitfalls:
#   1. KServe's ClusterServingRuntimes come from the separate kserve-runtime-configs chart: wait for it.
#   2. The KServe controller decides at start whether Knative is there: restart it once Knative is up.
#   3. Scale bounds go in spec.predictor.minReplicas (our manifests), never the min-scale annotation.
# KSERVE_MODE=RawDeployment installs KServe without Knative and Istio (for k8s/raw/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/k8s/scripts/versions.sh"
KSERVE_MODE=${KSERVE_MODE:-Serverless}
need kubectl flux
P=$ROOT/k8s/platform

wait_release() {  # name [timeout]
  log "waiting for HelmRelease $1"
  kubectl -n flux-system wait "helmrelease/$1" --for=condition=Ready --timeout="${2:-10m}"
}

log "installing Flux (source + helm controllers)"
flux install --components=source-controller,helm-controller
kubectl apply -f "$P/namespaces.yaml" -f "$P/sources.yaml" -f "$P/releases.yaml"
if [[ $KSERVE_MODE == Serverless ]]; then
  kubectl apply -f "$P/releases-serverless.yaml"
else
  kubectl -n flux-system patch helmrelease kserve-resources --type merge \
    -p "{\"spec\":{\"values\":{\"kserve\":{\"controller\":{\"deploymentMode\":\"$KSERVE_MODE\"}}}}}"
fi

wait_release metrics-server
wait_release cert-manager
if [[ $KSERVE_MODE == Serverless ]]; then
  wait_release istio-base
  wait_release istiod
  wait_release istio-ingressgateway
  wait_release knative-operator
  log "creating Knative Serving $KNATIVE_VERSION (KnativeServing CR, Istio ingress)"
  kubectl wait crd/knativeservings.operator.knative.dev --for=condition=Established --timeout=5m
  kubectl apply -f "$P/knative-serving.yaml"
  kubectl -n knative-serving wait knativeserving/knative-serving --for=condition=Ready --timeout=10m
fi
wait_release kserve-crd
wait_release kserve-resources 15m
# Pitfall 1: without this chart there is no ClusterServingRuntime at all.
wait_release kserve-runtime-configs
kubectl get clusterservingruntimes -o name | head -n3

# Pitfall 2: the controller checked for Knative's CRDs when it started (possibly before they existed).
if [[ $KSERVE_MODE == Serverless ]]; then
  log "restarting the KServe controller now that Knative is up"
  kubectl -n kserve rollout restart deployment/kserve-controller-manager
fi
kubectl -n kserve rollout status deployment/kserve-controller-manager --timeout=5m

# Our ClusterServingRuntimes (kcr-sklearn, kcr-ollama-proxy).
kubectl apply -f "$ROOT/k8s/kserve/runtimes.yaml"

# The Grafana dashboard of both runtimes (k8s/monitoring/): a ConfigMap for the dashboard sidecar of a
# kube-prometheus-stack Grafana. This stack installs no Prometheus or Grafana: applied only when there is
# a monitoring namespace (another one: k8s/monitoring/render_configmap.py --namespace NS --stdout).
if kubectl get namespace monitoring >/dev/null 2>&1; then
  kubectl apply -f "$ROOT/k8s/monitoring/kcr-dashboard-configmap.yaml"
else
  log "no namespace monitoring: Grafana dashboard not applied (k8s/monitoring/kcr-dashboard-configmap.yaml)"
fi
log "stack ready (KServe $KSERVE_VERSION, mode $KSERVE_MODE)"
