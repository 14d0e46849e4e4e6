"""Root conftest: shared fixture plugins, and KServe imported once with pytest's arguments hidden.

kserve 0.21 parses ``sys.argv`` when it is first imported; under pytest those are pytest's own
flags. Importing it here, before any test module imports the predictor, keeps them away from it.
"""

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve.model_server  # noqa: F401
finally:
    sys.argv = _argv

pytest_plugins = ["tests.fixtures.registry", "tests.fixtures.kube"]
