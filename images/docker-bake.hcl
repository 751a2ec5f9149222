# docker buildx bake file for both images, multi-arch. Run from the repository root:
#   docker buildx bake -f images/docker-bake.hcl --push                          # all targets, amd64+arm64
#   REGISTRY=ghcr.io/me TAG=0.1.0 docker buildx bake -f images/docker-bake.hcl --push sklearn
#   docker buildx bake -f images/docker-bake.hcl --set '*.platform=linux/amd64' --load   # local, one arch
# images/build.sh wraps this (and does the same with podman where there is no Docker engine).

variable "REGISTRY" { default = "kind.local" }
variable "TAG" { default = "0.1.0" }
variable "PLATFORMS" { default = "linux/amd64,linux/arm64" }
variable "BASE_IMAGE" { default = "python:3.11-slim-bookworm" }
variable "OLLAMA_IMAGE" { default = "docker.io/ollama/ollama:0.33.2" }
variable "MODEL" { default = "qwen2.5:0.5b" }
variable "REVISION" { default = "unknown" }
variable "CREATED" { default = "unknown" }

group "default" {
  targets = ["sklearn", "sklearn-iris", "ollama-proxy", "ollama-proxy-baked"]
}

target "_common" {
  context   = "."
  platforms = split(",", PLATFORMS)
  args = {
    BASE_IMAGE = BASE_IMAGE
    VERSION    = TAG
    REVISION   = REVISION
    CREATED    = CREATED
  }
}

# The runtime alone: serves /mnt/models (KServe's storage-initializer or a volume fills it).
target "sklearn" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile.sklearn"
  tags       = ["${REGISTRY}/kcr-sklearn:${TAG}"]
}

# Same image with the iris demo model baked in: `docker run -p 8080:8080` answers with no volume.
target "sklearn-iris" {
  inherits   = ["sklearn"]
  args       = { DEMO_MODEL = "iris" }
  tags       = ["${REGISTRY}/kcr-sklearn:${TAG}-iris"]
}

# OpenAI facade + the Ollama binary; weights on a volume (OLLAMA_MODELS=/models).
target "ollama-proxy" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile.ollama-proxy"
  args       = { OLLAMA_IMAGE = OLLAMA_IMAGE, MODEL = MODEL }
  tags       = ["${REGISTRY}/kcr-ollama-proxy:${TAG}"]
}

# With MODEL's weights baked in: a cold start pulls nothing (tag suffix: the model, ':' -> '-').
target "ollama-proxy-baked" {
  inherits   = ["ollama-proxy"]
  args       = { BAKE_MODEL = "1" }
  tags       = ["${REGISTRY}/kcr-ollama-proxy:${TAG}-${replace(MODEL, ":", "-")}"]
}
