"""The quantiles the models predict and the names of their outputs, without torch.

btcforecast.model (torch) defines the network; the facade and anything else that only reads a model's
outputs needs these names but must not import torch (its image has none: docs/images.md). The model
module re-exports them, so both import paths give the same objects.
"""

from __future__ import annotations

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
"""The quantiles a new model predicts: the 80% interval and the median (the point forecast)."""
POINT_QUANTILE = 0.5


def output_name(quantile: float) -> str:
    """``close`` for the median (the served point forecast), ``close_p10`` for the 10% quantile, ..."""
    return "close" if quantile == POINT_QUANTILE else f"close_p{round(quantile * 100):02d}"
