#!/usr/bin/env bash
# Build the five btc-forecast images from the repository root (`make images`). Each app image installs the
# core plus its component's extra from pyproject.toml only (docs/images.md): no shared app base. The four
# app images come from one Dockerfile, docker/component.Dockerfile (target and build arguments per
# component, in COMPONENTS below); the MLflow server from mlflow-server/Dockerfile.
#   TAG=0.1.0 REGISTRY=ghcr.io/me scripts/images.sh      # REGISTRY optional; PUSH=1 pushes
#
# Environment (all optional):
#   TAG                 image tag (0.1.0)
#   REGISTRY            registry prefix of the image names ("" = btc-forecast/<name>)
#   PYTHON_IMAGE        base image of every image (default: the Dockerfiles' pinned python:3.11.x-slim-bookworm)
#   TORCH_INDEX_URL     index serving CPU torch (default https://download.pytorch.org/whl/cpu)
#   TORCH_WHEELS        folder holding torch-<TORCH_VERSION>+cpu-*.whl: installed from there instead of the index
#                       (TORCH_VERSION: the `predictor` extra's torch pin in pyproject.toml)
#   PIP_FROM_HOST=1     carry this host's pip CA bundle and http(s) index settings into the build stages
#                       (only there: the final images never contain them)
#   DOCKER_BUILD_FLAGS  extra `docker build` flags for every image, e.g. "--network host --pull=false"
#   FORCE_BUILD=1       run docker build even when an image's inputs are unchanged (its btcf.inputs label)
#   LOCAL_BUILD=1       build where no registry can be reached (this project's dev machines and CI):
#                       PYTHON_IMAGE from scripts/base-image.sh (debootstrap), torch from the wheel the host's
#                       pip finds (TORCH_WHEELS or its find-links), PIP_FROM_HOST=1, --network host, the
#                       legacy builder, and the project's own Docker engine when DOCKER_HOST is unset
#                       (python -m tests.k8s.docker_engine start; data root in ~/.cache/btc-forecast/docker;
#                       stopped again at the end when this run started it, unless KEEP_ENGINE=1).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${TAG:-0.1.0}"
PREFIX="${REGISTRY:+${REGISTRY}/}btc-forecast"
COMPONENT_DOCKERFILE=docker/component.Dockerfile
# component (= extra, build target, image name) -> the project's packages it keeps in /opt/app (APP) and the
# modules its build imports (IMPORTS: entry modules and what they import lazily on their paths)
declare -A APP=(
  [predictor]="predictor bin"
  [facade]="facade"
  [callback]="callback"
  [operator]="btcf_operator"
)
declare -A IMPORTS=(
  [predictor]="predictor.__main__ btcforecast.cli btcforecast.seeding btcforecast.mlflow_model scipy.special boto3"
  [facade]="facade.main facade.__main__ btcforecast.kube kubernetes.client scipy.special boto3"
  [callback]="callback.main callback.__main__"
  [operator]="btcf_operator.main btcforecast.kube kubernetes.client"
)
COMPONENTS=(predictor facade callback operator)
IMAGES=("${COMPONENTS[@]}" mlflow postgres)
# CPU torch: the release the `predictor` extra pins (constraints.txt holds the same)
TORCH_VERSION="$("${PYTHON:-python3}" -c 'import tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["predictor"]
print(next(r.split("==")[1] for r in extra if r.startswith("torch==")))')"
log() { echo "images: $*" >&2; }

command -v docker >/dev/null || { log "docker is not installed (https://docs.docker.com/get-docker/)"; exit 1; }

read -r -a BUILD_FLAGS <<<"${DOCKER_BUILD_FLAGS:-}"
if [ "${LOCAL_BUILD:-0}" = 1 ]; then
  if [ -z "${DOCKER_HOST:-}" ]; then
    python="${PYTHON:-python3}"; [ -x .venv/bin/python ] && python=.venv/bin/python
    engine="$("$python" -m tests.k8s.docker_engine start)"
    DOCKER_HOST="$(sed -n 's/^DOCKER_HOST=//p' <<<"$engine")"
    export DOCKER_HOST
    log "using the project's Docker engine at $DOCKER_HOST"
    # Stop it at the end if this run started it (KEEP_ENGINE=1 keeps it, e.g. to `docker run` the images).
    if [ "$(sed -n 's/^STARTED=//p' <<<"$engine")" = 1 ] && [ "${KEEP_ENGINE:-0}" != 1 ]; then
      trap '"$python" -m tests.k8s.docker_engine stop' EXIT
    fi
  fi
  export DOCKER_BUILDKIT=0
  PIP_FROM_HOST=1
  BUILD_FLAGS+=(--network host)
fi
docker info >/dev/null 2>&1 || { log "docker is installed but no engine answers at ${DOCKER_HOST:-the default socket}"; exit 1; }
if [ "${LOCAL_BUILD:-0}" = 1 ] && [ -z "${PYTHON_IMAGE:-}" ]; then
  PYTHON_IMAGE="$(scripts/base-image.sh | tail -n 1)"
fi

# .build/ is the part of the build context this script prepares (ignored by git; see .dockerignore):
# .build/wheels/torch holds the torch wheel (copied into the predictor's build stage), .build/wheels/none
# nothing (the other components').
mkdir -p .build/wheels/torch .build/wheels/none .build/pip
rm -f .build/wheels/*.whl  # where the wheel lay before the components shared one Dockerfile

# -- torch: a local wheel when asked for (or found by the host's pip in LOCAL_BUILD), else the index.
find_torch_wheel() {
  local dirs=() d f
  [ -n "${TORCH_WHEELS:-}" ] && dirs+=("$TORCH_WHEELS")
  if [ "${LOCAL_BUILD:-0}" = 1 ] && [ -z "${TORCH_WHEELS:-}" ]; then
    # the host pip's find-links (PIP_FIND_LINKS and pip config), space separated
    for d in ${PIP_FIND_LINKS:-} $(pip_config find-links); do dirs+=("${d#file://}"); done
  fi
  for d in "${dirs[@]}"; do
    for f in "$d"/torch-"${TORCH_VERSION}"+cpu-*.whl; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  done
  return 1
}
PIP_CONFIG_LIST=""  # `pip config list` of the host, read once (pip starts slowly)
if [ "${LOCAL_BUILD:-0}" = 1 ] || [ "${PIP_FROM_HOST:-0}" = 1 ]; then
  PIP_CONFIG_LIST="$("${PYTHON:-python3}" -m pip config list 2>/dev/null || true)"
fi
pip_config() {  # pip_config KEY -> values of KEY in the host's pip configuration (any section)
  sed -n "s/^[^=]*\.$1='\(.*\)'\$/\1/p" <<<"$PIP_CONFIG_LIST"
}
for stale in .build/wheels/torch/torch-*.whl; do
  [ -f "$stale" ] && [[ "$(basename "$stale")" != torch-"${TORCH_VERSION}"+cpu-* ]] && rm -f "$stale"
done
if [ -n "${TORCH_WHEELS:-}" ] || [ "${LOCAL_BUILD:-0}" = 1 ]; then
  wheel="$(find_torch_wheel)" || {
    log "no torch-${TORCH_VERSION}+cpu wheel found (TORCH_WHEELS=${TORCH_WHEELS:-unset}); trying pip download"
    "${PYTHON:-python3}" -m pip download --no-deps --only-binary=:all: --dest .build/wheels/torch \
      "torch==${TORCH_VERSION}+cpu" >&2 || { log "set TORCH_WHEELS to a folder with the CPU torch wheel"; exit 1; }
    wheel=""
  }
  if [ -n "$wheel" ] && ! cmp -s "$wheel" ".build/wheels/torch/$(basename "$wheel")"; then
    cp "$wheel" .build/wheels/torch/
  fi
  log "torch from $(ls .build/wheels/torch/torch-*.whl)"
else
  rm -f .build/wheels/torch/torch-*.whl
  log "torch from ${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
fi

# -- pip settings for the build stages (PIP_CONFIG_FILE=/etc/btcf-pip/pip.conf in the Dockerfiles).
write_if_changed() {  # keep the file's content (and so the layer cache) when nothing changed
  if ! cmp -s - "$1" <<<"$2"; then printf '%s\n' "$2" >"$1"; fi
}
conf="[global]"
if [ "${PIP_FROM_HOST:-0}" = 1 ]; then
  cert="${PIP_CERT:-$(pip_config cert | head -n 1)}"
  cert="${cert:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"
  if [ -f "$cert" ]; then
    cmp -s "$cert" .build/pip/ca.crt || cp "$cert" .build/pip/ca.crt
    conf+=$'\n'"cert = /etc/btcf-pip/ca.crt"
  fi
  keep_http() { tr ' ' '\n' | { grep -E '^https?://' || true; } | sort -u | tr '\n' ' ' | sed 's/ $//'; }
  index="$( { echo "${PIP_INDEX_URL:-}"; pip_config index-url; } | keep_http | awk '{print $1}')"
  extra="$( { echo "${PIP_EXTRA_INDEX_URL:-}"; pip_config extra-index-url; } | tr '\n' ' ' | keep_http)"
  trusted="$( { echo "${PIP_TRUSTED_HOST:-}"; pip_config trusted-host; } | tr '\n' ' ' | tr -s ' ' | sed 's/^ //; s/ $//')"
  [ -n "$index" ] && conf+=$'\n'"index-url = $index"
  [ -n "$extra" ] && conf+=$'\n'"extra-index-url = $extra"
  [ -n "$trusted" ] && conf+=$'\n'"trusted-host = $trusted"
  conf+=$'\n'"timeout = ${PIP_DEFAULT_TIMEOUT:-180}"$'\n'"retries = 10"
else
  rm -f .build/pip/ca.crt
fi
write_if_changed .build/pip/pip.conf "$conf"

# -- each component's requirements (the core plus its extra), for their own layer (a source change does
#    not reinstall them): .build/requirements/<component>.txt
mkdir -p .build/requirements
rm -f .build/requirements.txt  # the single list of the shared app base, before the images were split
for component in "${COMPONENTS[@]}"; do
  "${PYTHON:-python3}" - "$component" >".build/requirements/$component.txt.new" <<'PY'
import sys
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
print("\n".join([*project["dependencies"], *project["optional-dependencies"][sys.argv[1]]]))
PY
  cmp -s ".build/requirements/$component.txt.new" ".build/requirements/$component.txt" \
    && rm ".build/requirements/$component.txt.new" \
    || mv ".build/requirements/$component.txt.new" ".build/requirements/$component.txt"
done

# -- build arguments shared by every Dockerfile
ARGS=()
[ -n "${PYTHON_IMAGE:-}" ] && ARGS+=(--build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}")
[ -n "${TORCH_INDEX_URL:-}" ] && ARGS+=(--build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL}")
for proxy in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [ -n "${!proxy:-}" ] && ARGS+=(--build-arg "$proxy")  # predefined build args: not kept in the image
done

# Every image carries a label with a fingerprint of its inputs (the files it is built from and the
# build arguments); an image whose label matches is left as it is. Docker's own layer cache would
# give the same image, but after an engine restart it re-hashes every COPY --from layer.
fingerprint() {  # fingerprint TEXT PATH... -> sha256 of TEXT and of the files' names and contents
  { echo "$1"; shift
    find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' \
      ! -name '*.csv' ! -name '*.parquet' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  } | sha256sum | cut -c1-64
}
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || echo "$1"; }

build() {  # build REF DOCKERFILE FINGERPRINT [extra docker build args...]
  local ref="$1" dockerfile="$2" inputs="$3" start=$SECONDS
  shift 3
  echo "==> ${ref}  (${dockerfile})"
  if [ "${FORCE_BUILD:-0}" != 1 ] && \
     [ "$(docker image inspect -f '{{index .Config.Labels "btcf.inputs"}}' "$ref" 2>/dev/null)" = "$inputs" ]; then
    log "${ref} is up to date (inputs ${inputs:0:12})"
    return 0
  fi
  if grep -qiE '^[[:space:]]*(COPY|ADD)[[:space:]]' "${dockerfile}"; then
    docker build "${BUILD_FLAGS[@]}" "${ARGS[@]}" "$@" --label "btcf.inputs=${inputs}" -f "${dockerfile}" -t "${ref}" .
  else  # nothing to copy: no build context to send (the torch wheel alone is 190 MB)
    docker build "${BUILD_FLAGS[@]}" "${ARGS[@]}" "$@" --label "btcf.inputs=${inputs}" -t "${ref}" - <"${dockerfile}"
  fi
  log "${ref} built in $((SECONDS - start)) s"
}

total_start=$SECONDS
python_id="$(image_id "${PYTHON_IMAGE:-default}")"
SOURCES=(pyproject.toml constraints.txt docker/slim-venv.sh .build/pip btcforecast predictor facade callback operator)
for name in "${IMAGES[@]}"; do
  ref="${PREFIX}/${name}:${TAG}"
  if [ "$name" = mlflow ]; then
    inputs="$(fingerprint "${ARGS[*]} ${python_id}" mlflow-server/Dockerfile constraints.txt .build/pip)"
    build "${ref}" mlflow-server/Dockerfile "${inputs}"
  elif [ "$name" = postgres ]; then
    inputs="$(fingerprint "${ARGS[*]} ${python_id}" postgres/Dockerfile postgres)"
    build "${ref}" postgres/Dockerfile "${inputs}"
  else
    requirements=".build/requirements/$name.txt"
    # torch (from .build/wheels/torch or the index) only for a component whose extra pins it
    torch_pin="$(sed -n 's/^torch==//p' "$requirements")"
    wheels=none
    [ -n "$torch_pin" ] && wheels=torch
    component_args=(--target "$name" --build-arg "COMPONENT=$name" --build-arg "APP=${APP[$name]}"
                    --build-arg "IMPORTS=${IMPORTS[$name]}" --build-arg "WHEELS=$wheels")
    [ -n "$torch_pin" ] && component_args+=(--build-arg "TORCH_VERSION=$torch_pin")
    inputs="$(fingerprint "${ARGS[*]} ${component_args[*]} ${python_id}" "$COMPONENT_DOCKERFILE" "${SOURCES[@]}" \
      "$requirements" ".build/wheels/$wheels")"
    build "${ref}" "$COMPONENT_DOCKERFILE" "${inputs}" "${component_args[@]}"
  fi
  if [ "${PUSH:-0}" = 1 ]; then docker push "${ref}"; fi
done
log "all images built in $((SECONDS - total_start)) s"
echo "image sizes (docker image inspect .Size):"
for ref in "${PYTHON_IMAGE:-}" $(for name in "${IMAGES[@]}"; do echo "${PREFIX}/${name}:${TAG}"; done); do
  [ -n "$ref" ] && docker image inspect "$ref" >/dev/null 2>&1 || continue
  printf '  %-40s %s\n' "$ref" "$(docker image inspect -f '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}')"
done
echo "built: $(for name in "${IMAGES[@]}"; do printf '%s/%s:%s ' "${PREFIX}" "${name}" "${TAG}"; done)"
