#!/usr/bin/env bash
# Serve the iris model on :PORT, print one prediction and the curl line that repeats it, then keep
# serving in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-8080}
model_dir=${2:-models/iris}
.venv/bin/kcr serve sklearn --model-dir "$model_dir" --model-name iris --http-port "$port" --no-access-log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/v1/models/iris" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.1
done
body='{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
echo
echo "Prediction from http://127.0.0.1:$port/v1/models/iris:predict:"
curl -s "http://127.0.0.1:$port/v1/models/iris:predict" -H 'content-type: application/json' -d "$body"
echo
echo
echo "Repeat it with:"
echo "  curl -s http://127.0.0.1:$port/v1/models/iris:predict -H 'content-type: application/json' -d '$body'"
echo
echo "Serving on :$port (Ctrl-C to stop)."
wait $server
