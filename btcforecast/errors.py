"""Errors shared by every component.

A component that depends on another service (S3, MLflow, the predictor) raises a subclass of
:class:`DependencyUnavailable` when that service cannot be reached, so that an HTTP edge can answer
503 for all of them with one handler instead of knowing every client library's exceptions.
"""

from __future__ import annotations


class DependencyUnavailable(Exception):
    """A service this code depends on cannot be reached or refuses to serve; retrying later may work."""
