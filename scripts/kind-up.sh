#!/usr/bin/env bash
# One command from nothing to btc-forecast on kind (`make kind-up`):
# kind cluster (kind-config.yaml) -> ingress-nginx -> images built and loaded -> helm install --wait.
#   KSERVE=1 scripts/kind-up.sh     # also install cert-manager + KServe (Standard mode) and serve through it
#   HELM_ARGS="--set seed.data.csvUrl=https://..." scripts/kind-up.sh
# Not run on the project's build machines (no registry can be reached there); docs/kubernetes.md says
# what is tested where and how to run the project's Kubernetes tests against this cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-btc-forecast}"
NAMESPACE="${NAMESPACE:-btc-forecast}"
RELEASE="${RELEASE:-btc-forecast}"
TAG="${TAG:-0.1.0}"
# Pinned versions of what we install from the internet (checked 2026-12).
# ingress-nginx was retired in March 2026: controller-v1.14.5 is its last release (docs/kubernetes.md).
INGRESS_NGINX_VERSION="${INGRESS_NGINX_VERSION:-controller-v1.14.5}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
# KServe's control plane at the version of the kserve Python package the predictor is built with.
KSERVE_PYTHON_VERSION="$(sed -n 's/^kserve==//p' constraints.txt)"
KSERVE_VERSION="${KSERVE_VERSION:-v${KSERVE_PYTHON_VERSION:?kserve is not pinned in constraints.txt}}"
KSERVE_NAMESPACE="${KSERVE_NAMESPACE:-kserve}"
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
  step "cert-manager ${CERT_MANAGER_VERSION}"
  kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
  kubectl -n cert-manager rollout status deployment/cert-manager-webhook --timeout=300s

  # Since KServe 0.17 the CRDs and the controller are two charts: kserve-crd and kserve-resources.
  step "KServe ${KSERVE_VERSION} (matches kserve==${KSERVE_PYTHON_VERSION}), Standard deployment mode"
  helm upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version "$KSERVE_VERSION" \
    --namespace "$KSERVE_NAMESPACE" --create-namespace --wait
  helm upgrade --install kserve oci://ghcr.io/kserve/charts/kserve-resources --version "$KSERVE_VERSION" \
    --namespace "$KSERVE_NAMESPACE" --wait
  # Standard (raw Deployment) mode by default, as KServe's own install script sets it; our
  # InferenceService also says so in its serving.kserve.io/deploymentMode annotation.
  kubectl -n "$KSERVE_NAMESPACE" patch configmap inferenceservice-config --type merge \
    -p '{"data":{"deploy":"{\"defaultDeploymentMode\": \"Standard\"}"}}'
  kubectl -n "$KSERVE_NAMESPACE" rollout restart deployment/kserve-controller-manager
  kubectl -n "$KSERVE_NAMESPACE" rollout status deployment/kserve-controller-manager --timeout=300s
  set_kserve=(--set predictor.kserve.enabled=true)
fi

step "building images (tag ${TAG})"
TAG="$TAG" scripts/images.sh

step "loading images into kind"
for name in predictor facade callback operator mlflow postgres; do
  kind load docker-image --name "$CLUSTER" "btc-forecast/${name}:${TAG}"
done

# --wait --wait-for-jobs: Helm returns once every workload is ready and the seed Job (an ordinary
# Job of the release, not a hook) has trained the models; the predictor turns ready only after that.
step "helm upgrade --install ${RELEASE} --wait (the seed Job trains the backtest models on first install)"
helm upgrade --install "$RELEASE" charts/btc-forecast \
  --namespace "$NAMESPACE" --create-namespace \
  --set-string "predictor.image.tag=${TAG},facade.image.tag=${TAG},callback.image.tag=${TAG},operator.image.tag=${TAG},mlflow.image.tag=${TAG},tests.image.tag=${TAG}" \
  "${set_kserve[@]}" ${HELM_ARGS:-} \
  --wait --wait-for-jobs --timeout "$TIMEOUT"

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
The project's Kubernetes tests against this cluster (docs/kubernetes.md):
  kind get kubeconfig --name ${CLUSTER} > kind.kubeconfig
  BTCF_TEST_KUBECONFIG=\$PWD/kind.kubeconfig .venv/bin/pytest -m kube
Tear down: scripts/kind-down.sh   (docs/kubernetes.md has every endpoint)
MSG
