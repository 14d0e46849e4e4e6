"""The facade's request body limit (413 ``{"detail": ...}``): the shared middleware, see
:mod:`btcforecast.bodylimit`."""

from __future__ import annotations

from btcforecast.bodylimit import BodySizeLimit, BodyTooLarge

__all__ = ["BodySizeLimit", "BodyTooLarge"]
