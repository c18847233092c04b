"""tiecast.training: forecasters, backtests and MLflow tracking (built on tiecast.features).

Public API (everything else is private):

- :class:`DirectForecaster` – global direct multi-horizon LightGBM forecaster of log growth with rolling
  conformal intervals (scikit-learn estimator contract); :class:`RollingFit` – its one training loop (models at
  several cutoffs, shared by ``fit`` and the backtest), :data:`DEFAULT_PARAMS`.
- :func:`backtest` -> :class:`BacktestResult` – rolling-origin evaluation against naive, drift, AutoETS,
  mlforecast and a no-ties ablation on the same splits; :func:`write_backtest` writes ``metrics.csv`` and plots;
  :func:`comparison_tables`, :func:`comparison_text`, :data:`BASELINE_NOTE` present it; :func:`parse_origins`
  reads origin years from text.
- :func:`train_and_register` -> :class:`TrainResult` – backtest, final fit, MLflow logging and registration of
  the pyfunc model with the alias ``challenger``; :func:`promote` -> :class:`PromotionResult` moves
  ``champion``; :func:`tracking_uri` – the MLflow store in use.

Year convention everywhere: origin year ``t`` is the last year of data used; horizon ``h`` targets ``t + h``.
"""

from ._backtest import METHODS, METRIC_COLUMNS, BacktestResult, TargetPlan, backtest, parse_origins
from ._baselines import BASELINE_NOTE
from ._model import DEFAULT_PARAMS, DirectForecaster, RollingFit
from ._output import comparison_tables, comparison_text, write_backtest
from ._tracking import PromotionResult, TrainResult, promote, tracking_uri, train_and_register

__all__ = [
    "BASELINE_NOTE",
    "DEFAULT_PARAMS",
    "METHODS",
    "METRIC_COLUMNS",
    "BacktestResult",
    "DirectForecaster",
    "PromotionResult",
    "RollingFit",
    "TargetPlan",
    "TrainResult",
    "backtest",
    "comparison_tables",
    "comparison_text",
    "parse_origins",
    "promote",
    "tracking_uri",
    "train_and_register",
    "write_backtest",
]
