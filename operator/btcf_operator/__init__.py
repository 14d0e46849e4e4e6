"""kopf operator for the ``ModelAlias`` resource: follow an MLflow alias and roll the predictor to it.

The package is not named ``operator`` because that would shadow the standard library module.
Run it with ``kopf run --standalone -m btcf_operator.main --all-namespaces``.
"""
