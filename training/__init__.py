"""tiecast.training: forecasters, backtests and MLflow tracking (built on features)."""
