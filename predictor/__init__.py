"""The KServe predictor: serves the btc-lstm versions that MLflow aliases point at.

Importing this package does not import KServe (which parses the command line at import);
the modules that need it import it themselves.
"""
