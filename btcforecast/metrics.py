"""Forecast quality: the metrics reported for a model beside the persistence baseline.

Plain numpy functions (no pandas) so that training, the facade, the registry and the operator's
quality gate all score forecasts the same way:

- point forecasts: MAE, RMSE, MAPE, directional accuracy and the share of flat forecasts
  (:func:`forecast_metrics`, :func:`persistence_metrics`);
- is the model *significantly* better than a baseline: the Diebold-Mariano test
  (:func:`diebold_mariano`);
- quantile forecasts: pinball loss and the coverage/width of the interval between the lowest and
  the highest quantile, overall and per ex-ante volatility tercile (:func:`pinball_loss`,
  :func:`interval_metrics`).

Undefined figures are ``NaN`` (e.g. directional accuracy when the price never moved, coverage of a
volatility tercile with no hours); the facade serialises with orjson, where ``NaN`` and infinities
become ``null``, and pydantic's ``model_dump_json`` does the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, WithJsonSchema

SIGNIFICANCE_LEVEL = 0.05
"""The level at which :class:`DieboldMariano` names a ``better`` forecast."""
TERCILE_NAMES: tuple[str, str, str] = ("calm", "normal", "volatile")
"""Keys of ``IntervalMetrics.coverage_by_volatility``, for tercile codes 0, 1, 2."""


MaybeFinite = Annotated[float, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]})]
"""A figure that may be NaN or infinite; JSON has neither, so the APIs send null and declare it."""


class ForecastMetrics(BaseModel):
    mae: float
    rmse: float
    mape: float
    """Mean absolute percentage error, in percent."""
    directional_accuracy: MaybeFinite
    """Share of the hours where the price moved (actual != last close) on which the predicted move
    from the last close has the actual move's sign. A flat forecast (predicted == last close) counts
    as wrong on such an hour, so persistence scores 0 by construction; ``NaN`` if the price never moved."""
    flat_share: float
    """Share of all forecasts equal to the last close, i.e. predicting no move (persistence: 1.0)."""
    n: int


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray, previous: np.ndarray) -> ForecastMetrics:
    """Metrics of ``predicted`` against ``actual``; ``previous`` is the last close each forecast saw."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    previous = np.asarray(previous, dtype=np.float64)
    if not (actual.shape == predicted.shape == previous.shape) or actual.ndim != 1 or actual.size == 0:
        raise ValueError(
            "metrics need equal, non-empty 1-D arrays; got actual "
            f"{actual.shape}, predicted {predicted.shape}, previous {previous.shape}"
        )
    error = predicted - actual
    moved = actual != previous
    same_sign = np.sign(predicted - previous) == np.sign(actual - previous)
    direction = float(same_sign[moved].mean()) if moved.any() else math.nan
    return ForecastMetrics(
        mae=float(np.abs(error).mean()),
        rmse=float(np.sqrt((error**2).mean())),
        mape=float((np.abs(error) / np.abs(actual)).mean() * 100.0),
        directional_accuracy=direction,
        flat_share=float((predicted == previous).mean()),
        n=int(actual.size),
    )


def persistence_metrics(actual: np.ndarray, previous: np.ndarray) -> ForecastMetrics:
    """The naive forecast (next close = last close): directional accuracy 0 by the convention above,
    flat share 1."""
    return forecast_metrics(actual, previous, previous)


# --- Diebold-Mariano -------------------------------------------------------------------------------


class DieboldMariano(BaseModel):
    """Diebold-Mariano test of equal predictive accuracy, model against baseline.

    ``statistic`` < 0 means the model has the lower mean loss. ``better`` names the forecast with
    the lower loss if the two-sided ``p_value`` is below 5%, else ``"neither"``. A loss differential
    that is constant but not zero has no variance: the statistic is then +/-inf and the p-value 0.
    """

    statistic: MaybeFinite
    p_value: MaybeFinite
    loss: Literal["absolute", "squared"]
    horizon: int
    lags: int
    """Newey-West truncation lag used for the long-run variance."""
    n: int
    better: Literal["model", "baseline", "neither"]


def newey_west_lags(n: int, horizon: int = 1) -> int:
    """The truncation lag: ``max(horizon - 1, floor(4 * (n / 100) ** (2 / 9)))``, at most ``n - 1``.

    ``h - 1`` is the textbook choice for an h-step forecast (its errors are MA(h-1)), but hourly loss
    differentials are also autocorrelated through volatility clustering, so we take at least the
    Newey-West (1994) rule of thumb for the Bartlett kernel (n = 3,048 -> 8 lags).
    """
    rule = math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))
    return max(0, min(max(horizon - 1, rule), n - 1))


def newey_west_variance(d: np.ndarray, lags: int) -> float:
    """Long-run variance of ``d``: autocovariances (divided by n) weighted by the Bartlett kernel."""
    centred = d - d.mean()
    n = centred.size
    variance = float(centred @ centred) / n
    for k in range(1, lags + 1):
        gamma = float(centred[k:] @ centred[:-k]) / n
        variance += 2.0 * (1.0 - k / (lags + 1)) * gamma
    return variance


def diebold_mariano(
    model_errors: np.ndarray,
    baseline_errors: np.ndarray,
    *,
    loss: Literal["absolute", "squared"] = "absolute",
    horizon: int = 1,
) -> DieboldMariano:
    """Diebold-Mariano test on the loss differential ``d = L(model error) - L(baseline error)``.

    ``L`` is the absolute or squared error. The variance of the mean of ``d`` is the Newey-West
    long-run variance (Bartlett kernel, lags from :func:`newey_west_lags`) over n; the statistic
    gets the Harvey-Leybourne-Newbold (1997) small-sample factor
    ``sqrt((n + 1 - 2h + h(h - 1) / n) / n)`` and is compared with Student's t with n - 1 degrees
    of freedom (two-sided). Identical losses give statistic 0 and p-value 1.

    Raises ``ValueError`` for mismatched or non-finite errors, fewer than 3 of them, a horizon
    below 1, or a horizon so long for n that the correction factor is not positive.
    """
    model = np.asarray(model_errors, dtype=np.float64)
    baseline = np.asarray(baseline_errors, dtype=np.float64)
    if model.shape != baseline.shape or model.ndim != 1:
        raise ValueError(
            f"Diebold-Mariano needs two equal 1-D arrays; got {model.shape} and {baseline.shape}"
        )
    n = int(model.size)
    if n < 3:
        raise ValueError(f"Diebold-Mariano needs at least 3 forecast errors; got {n}")
    if not (np.isfinite(model).all() and np.isfinite(baseline).all()):
        raise ValueError("Diebold-Mariano needs finite forecast errors")
    if loss not in ("absolute", "squared"):
        raise ValueError(f"loss must be 'absolute' or 'squared', not {loss!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, not {horizon!r}")
    correction = (n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n
    if correction <= 0:
        raise ValueError(f"horizon {horizon} is too long for {n} forecast errors")

    d = np.abs(model) - np.abs(baseline) if loss == "absolute" else model**2 - baseline**2
    lags = newey_west_lags(n, horizon)
    mean = float(d.mean())
    if not d.any():
        statistic, p_value = 0.0, 1.0
    elif np.ptp(d) == 0.0:
        statistic, p_value = math.copysign(math.inf, mean), 0.0
    else:
        variance = newey_west_variance(d, lags)
        if variance <= 0.0:  # only by rounding, for a nearly constant differential
            statistic, p_value = math.copysign(math.inf, mean), 0.0
        else:
            statistic = mean / math.sqrt(variance / n) * math.sqrt(correction)
            # scipy (a pinned dependency through mlflow) is imported here, not at module level: it takes
            # about a second to import, which every importer of these metrics would pay otherwise.
            from scipy.special import stdtr

            p_value = float(2.0 * stdtr(n - 1, -abs(statistic)))
    better: Literal["model", "baseline", "neither"] = "neither"
    if p_value < SIGNIFICANCE_LEVEL:
        better = "model" if statistic < 0 else "baseline"
    return DieboldMariano(
        statistic=float(statistic),
        p_value=min(1.0, p_value),
        loss=loss,
        horizon=horizon,
        lags=lags,
        n=n,
        better=better,
    )


# --- quantile forecasts ----------------------------------------------------------------------------


def _quantile_inputs(
    actual: np.ndarray, quantile_predictions: np.ndarray, quantiles: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(actual, dtype=np.float64)
    f = np.asarray(quantile_predictions, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"actual must be a non-empty 1-D array; got shape {y.shape}")
    if q.ndim != 1 or q.size == 0 or not ((q > 0) & (q < 1)).all():
        raise ValueError(f"quantiles must be a non-empty list of levels in (0, 1); got {list(q)}")
    if f.ndim == 1 and q.size == 1:
        f = f[:, None]
    if f.shape != (y.size, q.size):
        raise ValueError(
            f"quantile predictions must have shape [N, Q] = [{y.size}, {q.size}]; got {list(f.shape)}"
        )
    return y, f, q


def pinball_loss(actual: np.ndarray, quantile_predictions: np.ndarray, quantiles: Sequence[float]) -> float:
    """Mean over hours and quantiles of ``max(q * (y - f), (q - 1) * (y - f))``.

    ``quantile_predictions`` is ``[N, Q]`` with column j the forecast of quantile ``quantiles[j]``.
    For the single quantile 0.5 it is half the MAE.
    """
    y, f, q = _quantile_inputs(actual, quantile_predictions, quantiles)
    u = y[:, None] - f
    return float(np.maximum(q * u, (q - 1.0) * u).mean())


class IntervalMetrics(BaseModel):
    """The interval from the lowest to the highest forecast quantile, scored against the actual close."""

    level: float
    """Nominal coverage: highest minus lowest quantile (0.9 - 0.1 = 0.8)."""
    coverage: float
    """Share of hours with lower <= actual <= upper (bounds inclusive)."""
    coverage_by_volatility: dict[str, MaybeFinite]
    """Coverage per ex-ante volatility tercile: ``calm``, ``normal``, ``volatile`` (NaN: no hours)."""
    mean_width: float
    """Mean of upper - lower, in price units (USD)."""
    pinball: float
    """Pinball loss over all the forecast quantiles (see :func:`pinball_loss`)."""
    n: int


def interval_metrics(
    actual: np.ndarray,
    quantile_predictions: np.ndarray,
    quantiles: Sequence[float],
    volatility_tercile: np.ndarray,
) -> IntervalMetrics:
    """Coverage, width and pinball loss of ``[N, Q]`` quantile forecasts (Q >= 2).

    ``volatility_tercile`` holds 0 (calm), 1 (normal) or 2 (volatile) per hour, e.g. from
    ``baselines.volatility_terciles(baselines.ex_ante_volatility(...))``.
    """
    y, f, q = _quantile_inputs(actual, quantile_predictions, quantiles)
    if q.size < 2:
        raise ValueError("an interval needs at least two quantiles")
    terciles = np.asarray(volatility_tercile)
    if terciles.shape != y.shape or not np.isin(terciles, (0, 1, 2)).all():
        raise ValueError(f"volatility_tercile must hold 0, 1 or 2 for each of the {y.size} hours")
    low, high = int(np.argmin(q)), int(np.argmax(q))
    lower, upper = f[:, low], f[:, high]
    inside = (lower <= y) & (y <= upper)
    by_tercile = {
        name: float(inside[terciles == code].mean()) if (terciles == code).any() else math.nan
        for code, name in enumerate(TERCILE_NAMES)
    }
    return IntervalMetrics(
        level=round(float(q[high] - q[low]), 12),
        coverage=float(inside.mean()),
        coverage_by_volatility=by_tercile,
        mean_width=float((upper - lower).mean()),
        pinball=pinball_loss(y, f, q),
        n=int(y.size),
    )
