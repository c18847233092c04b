"""tiecast: indices and forecasts for inter-city cooperation.

The packages, each with its public API in ``__all__`` (everything starting with ``_`` is private):

- :mod:`tiecast.common` – shared plumbing: the one error hierarchy, atomic writes, progress bars;
- :mod:`tiecast.features` – the dataset contract, tie indices (:mod:`tiecast.features.ties`) and the leak-free
  feature panel;
- :mod:`tiecast.training` – forecasters, rolling-origin backtests, MLflow tracking and registry;
- :mod:`tiecast.serving` – serving the registered model and reports;
- :mod:`tiecast.cli` – the ``tiecast`` command line (the only place that knows command-line flags).

Imports point one way: ``common <- features <- training <- serving <- cli``. The three middle packages live in
the repository's top-level folders ``features/``, ``training/`` and ``serving/``.
"""

from tiecast.common import ConfigError, DatasetError, Problem, TiecastError, TrackingError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DatasetError", "Problem", "TiecastError", "TrackingError", "__version__"]
