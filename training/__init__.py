"""tiecast.training: forecasters, backtests and MLflow tracking (built on tiecast.features).

Public API (everything else is private):

- :class:`DirectForecaster` – global direct multi-horizon forecaster of log growth: LightGBM, a linear member
  and drift baselines combined per horizon with weights chosen on nested inner origins (:class:`Selection`),
  with rolling conformal intervals (scikit-learn estimator contract); :class:`RollingFit` – its one training
  loop (members at several cutoffs, shared by ``fit`` and the backtest); :class:`MemberSpec`,
  :data:`DEFAULT_MEMBERS`, :data:`DEFAULT_PARAMS`; :class:`Calendar` – years <-> observation steps.
- :func:`backtest` -> :class:`BacktestResult` – rolling-origin evaluation against naive, drift, recent drift,
  AutoETS, mlforecast and the ablations without ties / migration (:data:`ABLATIONS`) on the same splits;
  :func:`write_backtest` writes ``metrics.csv``, ``forecasts.csv`` (:data:`BACKTEST_FORECAST_COLUMNS`),
  ``selection.csv`` and plots;
  :func:`comparison_tables`, :func:`comparison_text`, :data:`BASELINE_NOTE` present it; :func:`parse_origins`
  reads origin years from text.
- :func:`train_and_register` -> :class:`TrainResult` – backtest, final fit, MLflow logging and registration of
  the pyfunc model (:class:`ModelPackage` built by a :data:`Packager`, default :func:`feature_row_package`)
  with the alias ``challenger``; :func:`promote` -> :class:`PromotionResult` moves
  ``champion``; :func:`tracking_uri` – the MLflow store in use; :func:`model_name` – a dataset's registered
  model name (``tiecast-<dataset name>``, characters MLflow forbids replaced).
- :func:`fit_gbm` -> :class:`GbmFit` – one LightGBM member trained as the forecaster trains it, on one process or
  data-parallel on a Dask cluster (``client=distributed.Client(...)``, LightGBM's Dask interface).

- :class:`ScenarioForecaster` – baseline and with/without-cooperation trajectories of every unit by two
  estimates (``dml``: :class:`CooperationEffects`, double ML of the effect of tie strength; ``forecaster_whatif``);
  :func:`validate_effects` (semi-synthetic benchmark), :func:`placebo_checks` (real-data placebos);
  :func:`rank_targets` – who gains most from cooperation, with whom.

Year convention everywhere: origin year ``t`` is the last year of data used; horizon ``h`` targets ``t + h``.
"""

from ._backtest import (
    ABLATIONS,
    BACKTEST_FORECAST_COLUMNS,
    METHODS,
    METRIC_COLUMNS,
    BacktestResult,
    TargetPlan,
    backtest,
    parse_origins,
)
from ._baselines import BASELINE_NOTE
from ._cooperation import (
    FORECAST_COLUMNS,
    LEVELS_COOPERATION,
    METHODS_COOPERATION,
    MODEL_ERROR,
    REPORTED_METHOD,
    ScenarioForecaster,
)
from ._data import Calendar
from ._distributed import GbmFit, fit_gbm
from ._effects import TREATMENT, CooperationEffects, EffectFit, tie_strength
from ._model import DEFAULT_MEMBERS, DEFAULT_PARAMS, DirectForecaster, MemberSpec, RollingFit, Selection
from ._output import comparison_tables, comparison_text, selection_tables, write_backtest
from ._targeting import FOCUS, TARGET_COLUMNS, focus_units, rank_targets
from ._tracking import (
    ModelPackage,
    Packager,
    PromotionResult,
    TrainResult,
    feature_row_package,
    model_name,
    promote,
    tracking_uri,
    train_and_register,
)
from ._validation import PlaceboResult, SemiSyntheticConfig, ValidationResult, placebo_checks, validate_effects

__all__ = [
    "ABLATIONS",
    "BACKTEST_FORECAST_COLUMNS",
    "BASELINE_NOTE",
    "DEFAULT_MEMBERS",
    "DEFAULT_PARAMS",
    "FOCUS",
    "FORECAST_COLUMNS",
    "LEVELS_COOPERATION",
    "METHODS",
    "METHODS_COOPERATION",
    "METRIC_COLUMNS",
    "MODEL_ERROR",
    "REPORTED_METHOD",
    "TARGET_COLUMNS",
    "TREATMENT",
    "BacktestResult",
    "Calendar",
    "CooperationEffects",
    "DirectForecaster",
    "EffectFit",
    "GbmFit",
    "MemberSpec",
    "ModelPackage",
    "Packager",
    "PlaceboResult",
    "PromotionResult",
    "RollingFit",
    "ScenarioForecaster",
    "Selection",
    "SemiSyntheticConfig",
    "TargetPlan",
    "TrainResult",
    "ValidationResult",
    "backtest",
    "comparison_tables",
    "comparison_text",
    "feature_row_package",
    "fit_gbm",
    "focus_units",
    "model_name",
    "parse_origins",
    "placebo_checks",
    "promote",
    "rank_targets",
    "selection_tables",
    "tie_strength",
    "tracking_uri",
    "train_and_register",
    "validate_effects",
    "write_backtest",
]
