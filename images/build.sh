#!/usr/bin/env bash
# One entry point to build the kcr images for linux/amd64 and linux/arm64, tag them, and push them or
# load them into a Kind cluster. Uses `docker buildx bake` (images/docker-bake.hcl) when a Docker engine
# with buildx is there, podman otherwise.
#
#   images/build.sh                                   # all four targets, amd64+arm64, local only
#   images/build.sh --registry ghcr.io/me --push      # multi-arch manifests pushed
#   images/build.sh --kind-load kcr                   # native arch, loaded into the Kind cluster "kcr"
#   images/build.sh --local-base --kind-load kcr      # this machine: podman + container-env.sh base images
#   images/build.sh sklearn-iris --platforms linux/arm64
#
# Targets: sklearn, sklearn-iris, ollama-proxy, ollama-proxy-baked (default: all).
# Options:
#   --engine docker|podman   force the builder
#   --platforms LIST         comma list (default linux/amd64,linux/arm64; "native" = this machine's)
#   --registry R             image prefix (default kind.local: Knative never resolves it against a registry)
#   --tag T                  (default: version from pyproject.toml)
#   --push                   push (podman: one manifest list per image)
#   --kind-load [CLUSTER]    build the native arch only and `kind load` it (default cluster: kcr)
#   --local-base             podman: BASE_IMAGE from ../shared/tools/container-env.sh and, as the
#                            official ollama/ollama cannot be pulled here, the images/ollama-stub stand-in
#   --base-image IMG / --ollama-image IMG / --model TAG   build args (see the Dockerfiles)
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-}
PLATFORMS=${PLATFORMS:-linux/amd64,linux/arm64}
REGISTRY=${REGISTRY:-kind.local}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
OLLAMA_IMAGE=${OLLAMA_IMAGE:-docker.io/ollama/ollama:0.33.2}
MODEL=${MODEL:-qwen2.5:0.5b}
PUSH=0 KIND_CLUSTER="" LOCAL_BASE=0 TARGETS=()

while (($#)); do
  case $1 in
    --engine) ENGINE=$2; shift ;;
    --platforms) PLATFORMS=$2; shift ;;
    --registry) REGISTRY=$2; shift ;;
    --tag) TAG=$2; shift ;;
    --push) PUSH=1 ;;
    --kind-load)
      KIND_CLUSTER=kcr
      if [[ ${2:-} && $2 != -* && ! $2 =~ ^(sklearn|sklearn-iris|ollama-proxy|ollama-proxy-baked)$ ]]; then
        KIND_CLUSTER=$2; shift
      fi ;;
    --local-base) LOCAL_BASE=1 ;;
    --base-image) BASE_IMAGE=$2; shift ;;
    --ollama-image) OLLAMA_IMAGE=$2; shift ;;
    --model) MODEL=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    sklearn|sklearn-iris|ollama-proxy|ollama-proxy-baked) TARGETS+=("$1") ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
((${#TARGETS[@]})) || TARGETS=(sklearn sklearn-iris ollama-proxy ollama-proxy-baked)

native="linux/$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')"
[[ $PLATFORMS == native || -n $KIND_CLUSTER ]] && PLATFORMS=$native
if [[ -z $ENGINE ]]; then
  if ((LOCAL_BASE == 0)) && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker
  else
    ENGINE=podman
  fi
fi
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log() { echo "build.sh: $*" >&2; }

image_of() {  # target -> image reference
  case $1 in
    sklearn) echo "$REGISTRY/kcr-sklearn:$TAG" ;;
    sklearn-iris) echo "$REGISTRY/kcr-sklearn:$TAG-iris" ;;
    ollama-proxy) echo "$REGISTRY/kcr-ollama-proxy:$TAG" ;;
    ollama-proxy-baked) echo "$REGISTRY/kcr-ollama-proxy:$TAG-${MODEL//:/-}" ;;
  esac
}

args_of() {  # target platform -> build args
  local arch=${2#linux/} base=$BASE_IMAGE ollama=$OLLAMA_IMAGE
  if ((LOCAL_BASE)); then
    base=localhost/python:3.11-slim-bookworm-$arch
    ollama=localhost/ollama-stub:$arch
  fi
  local a=(--build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$TAG" --build-arg "REVISION=$REVISION"
           --build-arg "CREATED=$CREATED")
  case $1 in
    sklearn) a+=(-f Dockerfile.sklearn) ;;
    sklearn-iris) a+=(-f Dockerfile.sklearn --build-arg DEMO_MODEL=iris) ;;
    ollama-proxy) a+=(-f Dockerfile.ollama-proxy --build-arg "OLLAMA_IMAGE=$ollama" --build-arg "MODEL=$MODEL") ;;
    ollama-proxy-baked) a+=(-f Dockerfile.ollama-proxy --build-arg "OLLAMA_IMAGE=$ollama"
                            --build-arg "MODEL=$MODEL" --build-arg BAKE_MODEL=1) ;;
  esac
  printf '%s\n' "${a[@]}"
}

kind_load() {  # image
  [[ -z $KIND_CLUSTER ]] && return
  local tar
  tar=$(mktemp --suffix=.tar)
  "$ENGINE" save -o "$tar" "$1" >/dev/null
  kind load image-archive "$tar" --name "$KIND_CLUSTER"
  rm -f "$tar"
  log "loaded $1 into kind cluster $KIND_CLUSTER"
}

if [[ $ENGINE == docker ]]; then
  mode=(); ((PUSH)) && mode=(--push)
  [[ -n $KIND_CLUSTER ]] && mode=(--load)
  start=$(date +%s)
  REGISTRY=$REGISTRY TAG=$TAG PLATFORMS=$PLATFORMS BASE_IMAGE=$BASE_IMAGE OLLAMA_IMAGE=$OLLAMA_IMAGE \
    MODEL=$MODEL REVISION=$REVISION CREATED=$CREATED \
    docker buildx bake -f images/docker-bake.hcl "${mode[@]}" "${TARGETS[@]}"
  log "built ${TARGETS[*]} for $PLATFORMS in $(( $(date +%s) - start ))s"
  for t in "${TARGETS[@]}"; do kind_load "$(image_of "$t")"; done
  exit 0
fi

# --- podman -------------------------------------------------------------------------------------------
build_flags=()
if ((LOCAL_BASE)); then
  shared=$(cd .. && pwd)/shared
  [[ -f $shared/tools/container-env.sh ]] || shared=/work/shared
  env_args=()
  [[ $PLATFORMS == *arm64* ]] && env_args=(--arm64)
  eval "$(bash "$shared/tools/container-env.sh" "${env_args[@]}")"
  read -r -a build_flags <<<"${BUILD_FLAGS:-}"
  for p in ${PLATFORMS//,/ }; do
    podman build "${build_flags[@]}" --platform "$p" --build-arg "BASE_IMAGE=localhost/python:3.11-slim-bookworm-${p#linux/}" \
      -t "localhost/ollama-stub:${p#linux/}" images/ollama-stub >/dev/null
  done
fi
IFS=, read -r -a plats <<<"$PLATFORMS"
for t in "${TARGETS[@]}"; do
  ref=$(image_of "$t")
  per_arch=()
  for p in "${plats[@]}"; do
    out=$ref
    ((${#plats[@]} > 1)) && out=$ref-${p#linux/}
    mapfile -t a < <(args_of "$t" "$p")
    start=$(date +%s)
    podman build "${build_flags[@]}" --format docker --platform "$p" "${a[@]}" -t "$out" . >&2
    log "$out ($p) built in $(( $(date +%s) - start ))s, $(podman image inspect "$out" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
    per_arch+=("$out")
  done
  if ((${#plats[@]} > 1)); then
    podman manifest rm "$ref" >/dev/null 2>&1 || true
    podman manifest create "$ref" >/dev/null
    for img in "${per_arch[@]}"; do podman manifest add "$ref" "containers-storage:$img" >/dev/null; done
    log "manifest list $ref: ${per_arch[*]}"
    ((PUSH)) && podman manifest push --all "$ref" "docker://$ref"
  else
    ((PUSH)) && podman push "$ref"
  fi
  kind_load "$ref"
done
