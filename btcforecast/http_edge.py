"""What every HTTP edge (facade, predictor) checks or says the same way: the bearer token and the
one-line text of a request that failed validation."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

from btcforecast.errors import ProjectError


class Unauthorized(ProjectError):
    """Missing or wrong bearer token on an endpoint that needs one (401 with ``WWW-Authenticate``)."""


def check_bearer(token: SecretStr | None, authorization: str | None, refusal: str) -> None:
    """Raise :class:`Unauthorized` (``refusal``) unless ``authorization`` is ``Bearer <token>``.

    Open when no token is configured. The comparison takes the same time wherever the values differ.
    """
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}".encode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
        raise Unauthorized(refusal)


def validation_message(error: Mapping[str, Any]) -> str:
    """pydantic's message, except that a pattern mismatch names the value, not the regular expression."""
    if error.get("type") == "string_pattern_mismatch":
        return f"{str(error.get('input'))[:80]!r} is malformed (not in the form the OpenAPI document gives)"
    return str(error.get("msg"))


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """``invalid request: <where>: <why>; ...`` from pydantic's errors; ``body`` is left out of paths."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {validation_message(e)}"
        for e in errors
    )
    return f"invalid request: {problems}"
