"""btc-forecast core: market data, features, the LSTM, training and the MLflow registry.

Every component (predictor, facade, callback receiver, operator) imports this package and never
copies from another component.
"""

from __future__ import annotations

__version__ = "0.1.0"
