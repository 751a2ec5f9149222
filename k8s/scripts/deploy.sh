#!/usr/bin/env bash
# Deploy the demo InferenceServices and wait until they are Ready.
#   deploy.sh              Serverless: sklearn-iris (baked), sklearn-iris-storage (STORAGE_URI + PVC),
#                          iris (modelFormat + runtime: kcr-sklearn), sklearn-iris-grpc (gRPC, h2c port),
#                          qwen (baked LLM)
#   deploy.sh --with-pvc   also qwen-pvc (weights on a PVC, pulled on first start: needs internet)
#   deploy.sh --raw        RawDeployment variants (k8s/raw/)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/k8s/scripts/versions.sh"
need kubectl
K=$ROOT/k8s
kubectl apply -f "$K/platform/namespaces.yaml"

if [[ ${1:-} == --raw ]]; then
  files=("$K/raw/sklearn-iris.yaml" "$K/raw/ollama-proxy.yaml")
  names=(sklearn-iris-raw qwen-raw)
else
  kubectl apply -f "$K/kserve/runtimes.yaml"
  files=("$K/kserve/sklearn-iris.yaml" "$K/kserve/sklearn-iris-storage.yaml" "$K/kserve/sklearn-iris-runtime.yaml"
         "$K/kserve/sklearn-iris-grpc.yaml" "$K/kserve/ollama-proxy.yaml")
  names=(sklearn-iris sklearn-iris-storage iris sklearn-iris-grpc qwen)
  if [[ ${1:-} == --with-pvc ]]; then
    files+=("$K/kserve/ollama-proxy-pvc.yaml"); names+=(qwen-pvc)
  fi
fi
for f in "${files[@]}"; do kubectl apply -f "$f"; done
if [[ ${1:-} != --raw ]]; then
  kubectl -n "$NAMESPACE" wait job/kcr-models-seed --for=condition=Complete --timeout=5m
fi
for n in "${names[@]}"; do
  log "waiting for InferenceService $n"
  kubectl -n "$NAMESPACE" wait "isvc/$n" --for=condition=Ready --timeout=15m
done
kubectl -n "$NAMESPACE" get isvc
