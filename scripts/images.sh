#!/usr/bin/env bash
# Build the five btc-forecast images from the repository root (`make images`).
#   TAG=0.1.0 REGISTRY=ghcr.io/me scripts/images.sh      # REGISTRY optional; PUSH=1 pushes
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${TAG:-0.1.0}"
PREFIX="${REGISTRY:+${REGISTRY}/}btc-forecast"
# image name -> Dockerfile
IMAGES=(
  "predictor:predictor/Dockerfile"
  "facade:facade/Dockerfile"
  "callback:callback/Dockerfile"
  "operator:operator/Dockerfile"
  "mlflow:mlflow-server/Dockerfile"
)

command -v docker >/dev/null || { echo "images: docker is not installed (https://docs.docker.com/get-docker/)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "images: docker is installed but its engine is not running" >&2; exit 1; }

# The four Python components share one base image (the project and CPU torch); build it first.
BASE="${PREFIX}/app-base:${TAG}"
echo "==> ${BASE}  (docker/app-base.Dockerfile)"
docker build -f docker/app-base.Dockerfile -t "${BASE}" .

for entry in "${IMAGES[@]}"; do
  name="${entry%%:*}"; dockerfile="${entry#*:}"
  ref="${PREFIX}/${name}:${TAG}"
  echo "==> ${ref}  (${dockerfile})"
  docker build -f "${dockerfile}" --build-arg "BASE_IMAGE=${BASE}" -t "${ref}" .
  if [ "${PUSH:-0}" = 1 ]; then docker push "${ref}"; fi
done
echo "built: $(for e in "${IMAGES[@]}"; do printf '%s/%s:%s ' "${PREFIX}" "${e%%:*}" "${TAG}"; done)"
