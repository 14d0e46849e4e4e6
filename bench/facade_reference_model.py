"""The reference: one MLflow pyfunc call per window, as an MLflow model logged from code (nothing pickled).

One call per window: a pandas DataFrame of one window in, through the LSTM, one close out (the
median, the point forecast; the network scales its inputs itself since the quantile head, so the
per-window pandas work is the column selection and conversion). Loaded by bench/facade.py with
mlflow.pyfunc.load_model; the weights come from the artifact dir.
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

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[float]:
        frame = model_input[list(self.config.feature_names)].astype("float64")
        x = torch.tensor(frame.to_numpy(), dtype=torch.float32).unsqueeze(0)
        with torch.no_grad():
            quantiles = self.model(x)
        return [float(quantiles[0, self.config.point_index])]


mlflow.models.set_model(PerWindowModel())
