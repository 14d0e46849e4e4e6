"""Errors the facade's logic raises for what a client sent; the API turns each into a 4xx."""

from __future__ import annotations


class InputError(ValueError):
    """A request that can never succeed as sent: a malformed or impossible value (422)."""


class OutOfData(InputError):
    """Dates that are well formed but outside the market data we hold (422)."""
