"""The reference: what the original system did, as an MLflow pyfunc logged from code (nothing pickled).

One call per window: a pandas DataFrame of one window in, scaled with pandas, through the LSTM.
Loaded by bench/facade.py with mlflow.pyfunc.load_model; the weights come from the artifact dir.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import torch

from btcforecast.model import load_model


class PerWindowModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.model, self.config = load_model(Path(context.artifacts["model_dir"]))
        self.mean = pd.Series(self.config.feature_mean, index=self.config.feature_names)
        self.std = pd.Series(self.config.feature_std, index=self.config.feature_names)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[float]:
        frame = model_input[list(self.config.feature_names)].astype("float64")
        last_close = frame["close"].iloc[-1]
        relative = frame.copy()
        relative["close"] = (
            (frame["close"] / last_close).map(float).pipe(lambda s: s.apply(__import__("math").log))
        )
        scaled = (relative - self.mean) / self.std
        x = torch.tensor(scaled.to_numpy(), dtype=torch.float32).unsqueeze(0)
        with torch.no_grad():
            hidden, _ = self.model.lstm(x)
            step = self.model.head(hidden[:, -1, :]).squeeze(-1)
        log_return = float(step) * self.config.target_std + self.config.target_mean
        return [float(last_close * __import__("math").exp(log_return))]


mlflow.models.set_model(PerWindowModel())
