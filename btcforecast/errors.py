"""The project's errors: what went wrong, said once by the code that knows, mapped once by each edge.

Three kinds cover what a caller can act on: :class:`NotFound` (something named does not exist),
:class:`InputError` (what was sent can never succeed as sent) and :class:`Unavailable` (a service
this code depends on is down; retrying later may work). Each HTTP edge maps each kind to one
status and the CLI prints them as one line; anything else (a ``KeyError``, an ``IndexError``) is a
bug and surfaces as a 500 with its traceback in the log, never as a client's mistake.
"""

from __future__ import annotations


class ProjectError(Exception):
    """Base of every error the project raises on purpose, for a caller to report rather than crash on."""


class NotFound(ProjectError, LookupError):
    """Something asked for by name (an alias, a version, a model) does not exist (HTTP 404)."""


class InputError(ProjectError, ValueError):
    """A request that can never succeed as sent: a malformed or impossible value (HTTP 4xx)."""


class Unavailable(ProjectError):
    """A service this code depends on cannot be reached or refuses to serve; retrying later may work."""
