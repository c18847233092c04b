"""tiecast.serving: the command line, the MLflow pyfunc model and explanation reports."""
