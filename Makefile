# The two commands the README starts with:
#   make demo   set up, train the iris demo model, serve it on :8080 and show a prediction
#   make test   set up everything the tests need and run the whole suite (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
MODELS ?= models

.PHONY: demo setup setup-test lock models serve test test-images lint unit clean bench bench-quick soak proto

demo: setup models
	@scripts/demo.sh $(PORT) $(MODELS)/iris

setup:
	@scripts/bootstrap.sh sklearn,pandas,grpc

setup-test:
	@scripts/bootstrap.sh test

# requirements/*.lock from pyproject.toml: exact versions with hashes for make setup, CI and images.
lock:
	@scripts/lock.sh

models: $(MODELS)/iris/model.joblib

$(MODELS)/iris/model.joblib:
	@$(BIN)/python images/train_demo_models.py --out $(MODELS)

serve: setup models
	$(BIN)/kcr serve sklearn --model-dir $(MODELS)/iris --model-name iris --http-port $(PORT)

# Regenerate server/kserve/grpc_predict_v2_pb2*.py from server/kserve/grpc_predict_v2.proto.
proto:
	PYTHON=$(abspath $(BIN))/python scripts/gen_proto.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

KCR_TOOLS_DIR ?= /var/tmp/kcr-tools
export KCR_CHECKOV ?= $(KCR_TOOLS_DIR)/checkov/bin/checkov

# Everything: unit, integration, conformance against KServe, the LLM facade against the llama-cpp
# stand-in, load-test smoke, manifests (CRD/k8s schemas, checkov); then the container images
# (podman: amd64 + arm64 under qemu; needs root; KCR_IMAGE_TESTS=0 skips them).
test: setup-test lint
	$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/deploy/test_images.py $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-images

test-images:
	@if [ "$${KCR_IMAGE_TESTS:-1}" = 0 ]; then echo "image tests skipped (KCR_IMAGE_TESTS=0)"; \
	elif [ "$$(id -u)" != 0 ]; then echo "image tests need root for rootful podman: sudo make test-images"; \
	else images/ci-images.sh tests/deploy/test_images.py; fi

# Load tests (locust) against a running server: `make serve` in another shell, or LOAD_URL=...
LOAD_URL ?= http://127.0.0.1:$(PORT)
.PHONY: loadtest loadtest-chat loadtest-smoke
loadtest:
	$(BIN)/python -m loadtests.run --host $(LOAD_URL) --suite v1,v2 -u 20 -r 10 -t 60s --p95-ms 50 $(LOAD_ARGS)

loadtest-chat:
	$(BIN)/python -m loadtests.run --host $(LOAD_URL) --suite chat -u 4 -r 2 -t 60s --max-tokens 32 \
		--ttft-p95-ms 3000 $(LOAD_ARGS)

loadtest-smoke:
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/loadtests

# Soak: 10 minutes of mixed v1/v2/chat (locust) against sklearn + the facade; KCR_SOAK_SECONDS to change.
soak: setup-test
	KCR_SOAK_REPORT=$${KCR_SOAK_REPORT:-soak-report.json} $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		-m slow tests/reliability/test_soak.py

# Side-by-side benchmark against KServe 0.21's model server (needs wrk, h2load for the gRPC cell, and
# taskset; ~15 minutes).
bench: setup-test
	@command -v wrk >/dev/null && command -v h2load >/dev/null || { sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get install -y -qq wrk nghttp2-client; }
	$(BIN)/pip install -q 'matplotlib>=3.8'
	$(BIN)/python -m loadtests.bench_kserve --out bench-results $(BENCH_ARGS)

bench-quick: BENCH_ARGS = --quick
bench-quick: bench

clean:
	rm -rf $(MODELS) build *.egg-info

-include deploy.mk
