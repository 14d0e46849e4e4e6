"""Fixtures of the chart tests; the helpers live in chart_helpers (a unique module name, so that
`tests/conftest.py` and this file never shadow each other on import)."""

from __future__ import annotations

from chart_helpers import render

__all__ = ["render"]
