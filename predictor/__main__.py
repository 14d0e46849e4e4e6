"""``python -m predictor``: KServe's own flags plus ours, then the model server.

Flags override the environment (``PredictorSettings``): ``--model_alias``, ``--model_version``,
``--mlflow_tracking_uri``; ``--model_name`` is the KServe endpoint name (default ``MODEL_NAME``).
"""

from __future__ import annotations

import argparse

from kserve import model_server  # parses the command line at import: it is ours here

from predictor.model import ForecastModel
from predictor.server import PredictorServer
from predictor.settings import PredictorSettings

OURS = ("model_alias", "model_version", "mlflow_tracking_uri")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[model_server.parser], description="btc-lstm KServe predictor")
    parser.add_argument("--model_alias", help="MLflow alias to serve (env MODEL_ALIAS)")
    parser.add_argument("--model_version", help="serve this version instead of the alias (env MODEL_VERSION)")
    parser.add_argument("--mlflow_tracking_uri", help="MLflow server (env MLFLOW_TRACKING_URI)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind; 127.0.0.1 for local runs")
    parser.set_defaults(model_name=None, enable_grpc=False, enable_latency_logging=False)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = PredictorSettings(**{k: getattr(args, k) for k in OURS if getattr(args, k) is not None})
    model = ForecastModel(args.model_name or settings.model_name, settings)
    PredictorServer(
        model,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=args.enable_latency_logging,
        timeout_keep_alive=args.timeout_keep_alive,
    ).run()


if __name__ == "__main__":
    main()
