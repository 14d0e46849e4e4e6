"""Helpers that run Kubernetes for the tests: binaries, PKI, kubeconfigs, control plane, node simulator."""
