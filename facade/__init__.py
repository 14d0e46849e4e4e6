"""The REST facade: the public API, backtests over the predictor, signed callbacks and a dashboard."""
