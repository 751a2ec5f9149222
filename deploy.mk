# Deployment targets (included by the Makefile: `include deploy.mk`; also `make -f deploy.mk <target>`).
# The walkthrough, in order:
#   make cluster-up      Kind cluster (control plane, system worker, inference worker) + Cilium
#   make stack-up        Flux + metrics-server, cert-manager, Istio, Knative, KServe (Serverless)
#   make images-load     build both images (native arch) and `kind load` them
#   make deploy          the demo InferenceServices + ClusterServingRuntimes, wait until Ready
#   make smoke           predictions through the Istio gateway, OpenAI chat, scale-to-zero, cold start
#   make cluster-down    delete the cluster
# RawDeployment (no Knative/Istio): make cluster-up stack-up-raw images-load deploy-raw smoke-raw
# Images only: make images (amd64+arm64), make images-push IMAGE_REGISTRY=ghcr.io/me,
# make images-test (podman build + run checks, as CI), make manifests-check (schemas + checkov).

DEPLOY_SH ?= bash
IMAGE_REGISTRY ?= kind.local
IMAGE_TAG ?= 0.1.0
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
KIND_CLUSTER ?= kcr
# Extra flags for images/build.sh, e.g. IMAGE_BUILD_FLAGS=--local-base on machines without a registry.
IMAGE_BUILD_FLAGS ?=
DEPLOY_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

export KIND_CLUSTER

.PHONY: cluster-up stack-up stack-up-raw images images-push images-load deploy deploy-pvc deploy-raw \
        smoke smoke-raw cluster-down walkthrough images-test manifests-check

cluster-up:
	$(DEPLOY_SH) k8s/scripts/cluster-up.sh

stack-up:
	KSERVE_MODE=Serverless $(DEPLOY_SH) k8s/scripts/stack-up.sh

stack-up-raw:
	KSERVE_MODE=RawDeployment $(DEPLOY_SH) k8s/scripts/stack-up.sh

images:
	$(DEPLOY_SH) images/build.sh --registry $(IMAGE_REGISTRY) --tag $(IMAGE_TAG) \
	  --platforms $(IMAGE_PLATFORMS) $(IMAGE_BUILD_FLAGS)

images-push:
	$(DEPLOY_SH) images/build.sh --registry $(IMAGE_REGISTRY) --tag $(IMAGE_TAG) \
	  --platforms $(IMAGE_PLATFORMS) --push $(IMAGE_BUILD_FLAGS)

images-load:
	$(DEPLOY_SH) images/build.sh --registry $(IMAGE_REGISTRY) --tag $(IMAGE_TAG) \
	  --kind-load $(KIND_CLUSTER) $(IMAGE_BUILD_FLAGS)

deploy:
	$(DEPLOY_SH) k8s/scripts/deploy.sh

deploy-pvc:
	$(DEPLOY_SH) k8s/scripts/deploy.sh --with-pvc

deploy-raw:
	$(DEPLOY_SH) k8s/scripts/deploy.sh --raw

smoke:
	$(DEPLOY_SH) k8s/scripts/smoke.sh

smoke-raw:
	$(DEPLOY_SH) k8s/scripts/smoke.sh --raw

cluster-down:
	$(DEPLOY_SH) k8s/scripts/cluster-down.sh

walkthrough: cluster-up stack-up images-load deploy smoke

images-test:
	$(DEPLOY_SH) images/ci-images.sh

manifests-check:
	$(DEPLOY_PYTHON) -m pytest tests/deploy/test_manifests.py -q -o addopts=""
