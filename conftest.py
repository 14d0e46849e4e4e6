"""Root conftest: shared fixture plugins for the whole suite."""

pytest_plugins = ["tests.fixtures.registry"]
