#!/usr/bin/env bash
# Delete the kind cluster that scripts/kind-up.sh created (`make kind-down`), with everything in it.
set -euo pipefail
CLUSTER="${CLUSTER:-btc-forecast}"
command -v kind >/dev/null || { echo "kind-down: kind is not installed; nothing to delete" >&2; exit 1; }
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  echo "kind-down: no kind cluster named ${CLUSTER}"
fi
