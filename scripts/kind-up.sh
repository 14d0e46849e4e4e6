#!/usr/bin/env bash
# One command from nothing to btc-forecast on kind (`make kind-up`):
# kind cluster (kind-config.yaml) -> ingress-nginx -> images built and loaded -> helm install -> wait.
#   KSERVE=1 scripts/kind-up.sh     # also install cert-manager + KServe (Standard mode) and serve through it
#   HELM_ARGS="--set seed.data.csvUrl=https://..." scripts/kind-up.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-btc-forecast}"
NAMESPACE="${NAMESPACE:-btc-forecast}"
RELEASE="${RELEASE:-btc-forecast}"
TAG="${TAG:-0.1.0}"
# Pinned versions of what we install from the internet.
INGRESS_NGINX_VERSION="${INGRESS_NGINX_VERSION:-controller-v1.13.3}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.18.2}"
KSERVE_VERSION="${KSERVE_VERSION:-v0.17.0}"
TIMEOUT="${TIMEOUT:-30m}"

missing=()
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "kind-up: missing: ${missing[*]}" >&2
  echo "  docker:  https://docs.docker.com/get-docker/" >&2
  echo "  kind:    https://kind.sigs.k8s.io/docs/user/quick-start/#installation" >&2
  echo "  kubectl: https://kubernetes.io/docs/tasks/tools/" >&2
  echo "  helm:    https://helm.sh/docs/intro/install/" >&2
  exit 1
fi
docker info >/dev/null 2>&1 || { echo "kind-up: docker is installed but its engine is not running" >&2; exit 1; }

step() { printf '\n==> %s\n' "$*"; }

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  step "kind cluster ${CLUSTER} exists: reusing it"
else
  step "creating kind cluster ${CLUSTER}"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-${CLUSTER}" >/dev/null

step "ingress-nginx ${INGRESS_NGINX_VERSION}"
kubectl apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/${INGRESS_NGINX_VERSION}/deploy/static/provider/kind/deploy.yaml"
kubectl -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s

set_kserve=()
if [ "${KSERVE:-0}" = 1 ]; then
  step "cert-manager ${CERT_MANAGER_VERSION} and KServe ${KSERVE_VERSION} (Standard deployment mode)"
  kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
  kubectl -n cert-manager rollout status deployment/cert-manager-webhook --timeout=300s
  helm upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version "$KSERVE_VERSION" \
    --namespace kserve --create-namespace --wait
  helm upgrade --install kserve oci://ghcr.io/kserve/charts/kserve --version "$KSERVE_VERSION" \
    --namespace kserve --wait \
    --set kserve.controller.deploymentMode=Standard \
    --set kserve.controller.gateway.ingressGateway.className=nginx
  set_kserve=(--set predictor.kserve.enabled=true)
fi

step "building images (tag ${TAG})"
TAG="$TAG" scripts/images.sh

step "loading images into kind"
for name in predictor facade callback operator mlflow; do
  kind load docker-image --name "$CLUSTER" "btc-forecast/${name}:${TAG}"
done

# No --wait: helm would wait for the predictor to be ready before it runs the post-install seed
# Job, but the predictor only turns ready once the seed has set `production`. Helm still waits for
# the hook Jobs (buckets, then seed) to finish; the rollouts are awaited below.
step "helm upgrade --install ${RELEASE} (runs the seed Job: trains the backtest models on first install)"
helm upgrade --install "$RELEASE" charts/btc-forecast \
  --namespace "$NAMESPACE" --create-namespace \
  --set-string "predictor.image.tag=${TAG},facade.image.tag=${TAG},callback.image.tag=${TAG},operator.image.tag=${TAG},mlflow.image.tag=${TAG},tests.image.tag=${TAG}" \
  "${set_kserve[@]}" ${HELM_ARGS:-} \
  --timeout "$TIMEOUT"

step "waiting for every component"
kubectl -n "$NAMESPACE" wait --for=condition=Available deployment --all --timeout=600s
if [ "${KSERVE:-0}" = 1 ]; then
  kubectl -n "$NAMESPACE" wait --for=condition=Ready inferenceservice/btc-lstm --timeout=600s
fi

step "helm test"
helm test "$RELEASE" --namespace "$NAMESPACE"

cat <<MSG

btc-forecast is up on kind cluster ${CLUSTER}, namespace ${NAMESPACE}:
  curl http://localhost/health
  curl -X POST 'http://localhost/predict?alias=20250327'
  kubectl -n ${NAMESPACE} get ma -w
Tear down: scripts/kind-down.sh   (docs/kubernetes.md has every endpoint)
MSG
