#!/usr/bin/env bash
# Smoke tests of the deployed demo through the Istio ingress gateway (Host header routing):
#   1. sklearn v1 prediction (baked model), v2 inference (STORAGE_URI model), the kcr-sklearn runtime ISVC
#      and the Open Inference Protocol over gRPC (sklearn-iris-grpc; python3 with grpcio and protobuf)
#   2. chat completion with the OpenAI SDK (python3 with `openai` installed)
#   3. scale-to-zero observed (no sklearn-iris pod left after the idle window)
#   4. cold start timed (first request while at zero pods)
#   smoke.sh --raw   the RawDeployment variants through kubectl port-forward instead
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/k8s/scripts/versions.sh"
need kubectl curl python3
GW=http://127.0.0.1:$GATEWAY_PORT
IRIS='{"instances": [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]}'
V2='{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]}'
fail() { log "FAIL: $*"; exit 1; }
expect() {  # what got wanted
  [[ $2 == *"$3"* ]] || fail "$1: got $2, want $3"
  log "ok   $1: $2"
}
host_of() { kubectl -n "$NAMESPACE" get isvc "$1" -o jsonpath='{.status.url}' | sed -E 's#^https?://##'; }

if [[ ${1:-} == --raw ]]; then
  kubectl -n "$NAMESPACE" port-forward svc/sklearn-iris-raw-predictor 18080:80 >/dev/null & pf1=$!
  kubectl -n "$NAMESPACE" port-forward svc/qwen-raw-predictor 18081:80 >/dev/null & pf2=$!
  trap 'kill $pf1 $pf2' EXIT
  sleep 3
  expect "raw sklearn v1" "$(curl -sf localhost:18080/v1/models/iris:predict -d "$IRIS")" '{"predictions":[1,0]}'
  python3 "$ROOT/k8s/scripts/openai_smoke.py" --base-url http://127.0.0.1:18081/v1 --model qwen2.5:0.5b
  exit 0
fi

H=$(host_of sklearn-iris)
expect "sklearn v1 predict (Host: $H)" \
  "$(curl -sf -H "Host: $H" "$GW/v1/models/iris:predict" -d "$IRIS")" '{"predictions":[1,0]}'
H2=$(host_of sklearn-iris-storage)
expect "sklearn v2 infer, STORAGE_URI model (Host: $H2)" \
  "$(curl -sf -H "Host: $H2" "$GW/v2/models/iris/infer" -d "$V2")" '"data":[1]'
H3=$(host_of iris)
expect "modelFormat sklearn + runtime kcr-sklearn (Host: $H3)" \
  "$(curl -sf -H "Host: $H3" "$GW/v1/models/iris:predict" -d "$IRIS")" '{"predictions":[1,0]}'
H4=$(host_of sklearn-iris-grpc)
log "gRPC ModelInfer through the gateway (:authority $H4)"
python3 "$ROOT/k8s/scripts/grpc_smoke.py" --target "127.0.0.1:$GATEWAY_PORT" --authority "$H4"

log "chat completion with the OpenAI SDK (Host: $(host_of qwen))"
python3 "$ROOT/k8s/scripts/openai_smoke.py" --base-url "$GW/openai/v1" --host "$(host_of qwen)" \
  --model qwen2.5:0.5b

log "waiting for sklearn-iris to scale to zero (window 30 s + grace; up to 5 min)"
start=$(date +%s)
until [[ -z $(kubectl -n "$NAMESPACE" get pods -l serving.kserve.io/inferenceservice=sklearn-iris \
                -o name 2>/dev/null) ]]; do
  (( $(date +%s) - start > 300 )) && fail "sklearn-iris did not scale to zero in 300 s"
  sleep 5
done
log "ok   scaled to zero $(( $(date +%s) - start )) s after the last request"

t0=$(date +%s.%N)
out=$(curl -sf --max-time 300 -H "Host: $H" "$GW/v1/models/iris:predict" -d "$IRIS")
t1=$(date +%s.%N)
expect "cold-start prediction" "$out" '{"predictions":[1,0]}'
log "ok   cold start (zero pods -> answer): $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
