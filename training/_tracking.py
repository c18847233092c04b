"""MLflow tracking, model registration and promotion.

Store: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts under
``<project>/mlruns/artifacts``, where ``<project>`` is the nearest folder at or above the current directory that
holds a ``pyproject.toml`` naming tiecast (the repository, from any of its sub-folders), else the current
directory (an installed tiecast used from elsewhere, like MLflow's own ``./mlruns``). For any other
``sqlite:///PATH`` store, artifacts go to ``artifacts/`` beside the database file. One experiment per dataset,
``tiecast-<dataset name>``; the model is registered as ``tiecast-<dataset name>`` with the alias ``challenger``;
:func:`promote` moves ``champion``. MLflow forbids ``/`` and ``:`` in model names and allows only letters,
digits, ``_ . -`` and spaces in parameter and metric keys: :func:`model_name` and :func:`mlflow_key` replace
the other characters of dataset and target names by ``-`` and ``_`` (``€ pro Kopf`` -> ``_ pro Kopf``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiecast.common import ConfigError, TrackingError, stage
from tiecast.features import Dataset, PanelFeatures, build_features

from ._backtest import BACKTEST_FORECAST_COLUMNS, METHODS, BacktestResult, backtest
from ._model import DEFAULT_PARAMS, DirectForecaster

__all__ = ["ModelPackage", "Packager", "PromotionResult", "TrainResult", "artifact_location", "git_commit",
           "mlflow_key", "model_name", "promote", "tracking_uri", "train_and_register"]

# The source checkout this package runs from, if any (for the git commit of a run); None in an installed wheel.
_CHECKOUT = Path(__file__).resolve().parent.parent
_SOURCE_ROOT: Path | None = _CHECKOUT if (_CHECKOUT / ".git").exists() else None
PRIMARY_METRIC = "primary_mape"
CHALLENGER, CHAMPION = "challenger", "champion"


def project_root() -> Path:
    """The nearest folder at or above the current directory whose pyproject.toml names tiecast, else the cwd."""
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        toml = folder / "pyproject.toml"
        try:
            if toml.is_file() and 'name = "tiecast"' in toml.read_text(encoding="utf-8"):
                return folder
        except OSError:
            continue
    return cwd


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project>/mlruns/mlflow.db`` (see the module docstring)."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    return f"sqlite:///{project_root() / 'mlruns' / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Artifact root for new experiments: ``artifacts/`` beside a sqlite database, else the server's default."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if not db.is_absolute():
            db = Path.cwd() / db
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def model_name(ds_name: str) -> str:
    """The registered model (and experiment) of a dataset: ``tiecast-<name>`` with ``/`` and ``:`` as ``-``."""
    return "tiecast-" + re.sub(r"[/:]", "-", ds_name)


_KEY_CHARACTERS = re.compile(r"[^\w.\- ]")
_MAX_KEY = 250


def mlflow_key(*parts: object) -> str:
    """An MLflow parameter or metric key from ``parts`` joined by ``_``: characters MLflow rejects (anything
    but letters, digits, ``_ . -`` and spaces; ``:`` and ``/`` too, which it reads as paths) become ``_``;
    a leading ``.`` gets a ``_`` before it; at most 250 characters (MLflow's limit)."""
    key = _KEY_CHARACTERS.sub("_", "_".join(str(p) for p in parts))
    return ("_" + key if key.startswith(".") else key)[:_MAX_KEY]


def git_commit() -> tuple[str, bool]:
    """(commit hash of the source checkout tiecast runs from, whether its work tree has uncommitted changes);
    ("unknown", False) for an installed wheel (the run records the package version instead)."""
    if _SOURCE_ROOT is None:
        return "unknown", False
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_SOURCE_ROOT, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_SOURCE_ROOT,
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return commit, bool(status)
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def _client() -> Any:
    import mlflow
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"cannot create the MLflow store folder {db.parent}: {exc}; set "
                                "MLFLOW_TRACKING_URI to a writable store") from exc
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location(tracking_uri())))


@dataclass(frozen=True)
class TrainResult:
    """What ``tiecast train`` produced: the MLflow run, the registered model version and the backtest."""

    run_id: str
    experiment: str
    model_name: str
    version: str
    backtest: BacktestResult
    forecaster: DirectForecaster
    tracking_uri: str
    model: Any = None  # the registered python model (ModelPackage.python_model)


def _metrics_to_log(result: BacktestResult, ds: Dataset) -> dict[str, float]:
    out: dict[str, float] = {}
    for group in ("all", "small_mid"):
        summary = result.summary(group)
        for row in summary.itertuples(index=False):
            for col in ("mape", "rmse", "mase", "coverage80", "coverage90"):
                value = float(getattr(row, col))
                if np.isfinite(value):
                    out[mlflow_key(row.method, row.target, group, col, f"h{row.horizon}")] = value
    for target in result.plans:
        for method in METHODS:
            value = result.mean_mape(target, method)
            if np.isfinite(value):
                out[mlflow_key(method, target, "all", "mape_mean")] = value
    primary = result.mean_mape(ds.primary_target)
    if np.isfinite(primary):
        out[PRIMARY_METRIC] = primary
    return out


def selection_record(forecaster: DirectForecaster) -> dict[str, Any]:
    """The final model's combination per target and horizon: members' weights, the inner origins (calendar
    years) they were chosen on, each member's mean absolute log error there and how (note)."""
    out: dict[str, Any] = {}
    for target, sel in forecaster.selection_.items():
        out[target] = {
            "members": sel.members,
            "horizons": {str(h): {"weights": dict(zip(sel.members, [round(v, 6) for v in w], strict=True)),
                                  "inner_origins": sel.origins.get(h, []),
                                  "pooled_horizons": sel.horizons.get(h, []),
                                  "inner_errors": {k: round(v, 6) for k, v in sel.errors.get(h, {}).items()},
                                  "note": sel.notes.get(h, "")}
                         for h, w in sel.weights.items()},
            "designs": forecaster.designs_.get(target, {}),
        }
    return out


def _selection_params(forecaster: DirectForecaster) -> dict[str, str]:
    """MLflow parameters: ``weights_<target>_h<h>`` (non-zero member weights), ``selected_on_<target>_h<h>``
    (the inner origins, or how the weights were set without them) and ``design_<target>_<member>`` (whether a
    LightGBM member learnt growth relative to the cross-section, on what common share, with which common
    growth)."""
    out: dict[str, str] = {}
    for target, sel in forecaster.selection_.items():
        for h, weights in sel.weight_table().items():
            out[mlflow_key("weights", target, f"h{h}")] = ",".join(f"{m}:{w:g}" for m, w in weights.items())
            origins = sel.origins.get(h, [])
            out[mlflow_key("selected_on", target, f"h{h}")] = (",".join(map(str, origins)) if origins
                                                                 else sel.notes.get(h, ""))
        for member, design in forecaster.designs_.get(target, {}).items():
            share = design["common_share"]
            text = ("relative" if design["relative"] else "absolute") + (
                f" (common share {share:.3f})" if share is not None else " (common share unknown)")
            if design["relative"]:
                rule, growth = design["common_rule"], design["common_growth"]
                text += f"; common growth by rule {rule}: {growth:+.5f} log points/year"
            out[mlflow_key("design", target, member)] = text
    return out


def _write_artifacts(folder: Path, result: BacktestResult, ds: Dataset, pf: PanelFeatures,
                     latest: pd.DataFrame, comparison: str, forecaster: DirectForecaster) -> None:
    from ._output import selection_frame
    from ._plots import write_plots

    pf.catalog_frame().to_csv(folder / "features.csv", index=False)
    result.metrics.to_csv(folder / "metrics.csv", index=False)
    result.forecasts.reindex(columns=BACKTEST_FORECAST_COLUMNS).to_csv(folder / "forecasts.csv", index=False)
    selection_frame(result).to_csv(folder / "selection_backtest.csv", index=False)
    (folder / "selection.json").write_text(json.dumps(selection_record(forecaster), indent=1, ensure_ascii=False),
                                           encoding="utf-8")
    for group in ("all", "small_mid"):
        result.summary(group).to_csv(folder / f"summary_{group}.csv", index=False)
    (folder / "comparison.txt").write_text(comparison, encoding="utf-8")
    (folder / "plan.txt").write_text("\n".join(p.note for p in result.plans.values()) + "\n", encoding="utf-8")
    (folder / "calibration.json").write_text(json.dumps(
        {t: {str(o): {str(h): n for h, n in notes.items()} for o, notes in by_origin.items()}
         for t, by_origin in result.calibration.items()}, indent=1, ensure_ascii=False), encoding="utf-8")
    if result.tuning is not None:
        result.tuning.to_csv(folder / "tuning.csv", index=False)
    latest.to_csv(folder / "forecasts_latest.csv", index=False)
    write_plots(result, ds, folder / "plots")


def _latest_forecasts(forecaster: DirectForecaster, pf: PanelFeatures) -> pd.DataFrame:
    """Forecasts of each target from its last data year (the model's origin), in levels."""
    parts = []
    for target, end in forecaster.data_end_.items():
        rows = pf.frame[pf.frame["year"] == end]
        fc = forecaster.predict(rows)
        parts.append(fc[fc["target"] == target])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@dataclass
class ModelPackage:
    """What :func:`train_and_register` logs as the registered pyfunc model (``mlflow.pyfunc.log_model``)."""

    python_model: Any
    signature: Any
    input_example: Any
    pip_requirements: list[str]
    code_paths: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cleanup: Callable[[], None] | None = None  # e.g. removes a staged copy of the code after logging


# (final forecaster, dataset, features, seed, n_jobs) -> the model to register; the default is the feature-row
# model of :func:`feature_row_package`; :func:`tiecast.serving.service_package` registers the request model.
Packager = Callable[[DirectForecaster, Dataset, PanelFeatures, int, int], ModelPackage]


def feature_row_package(forecaster: DirectForecaster, ds: Dataset, pf: PanelFeatures, seed: int, n_jobs: int
                        ) -> ModelPackage:
    """The forecaster as a pyfunc of feature rows (:class:`TiecastPyfunc`; needs tiecast importable)."""
    import lightgbm
    import mlflow
    from mlflow.models import infer_signature

    from ._pyfunc import TiecastPyfunc, member_payload

    python_model = TiecastPyfunc(
        members={t: [member_payload(m) for m in ms] for t, ms in forecaster.members_.items()},
        weights={t: dict(s.weights) for t, s in forecaster.selection_.items()},
        feature_names=list(forecaster.feature_names_),
        quantiles={t: c.quantiles for t, c in forecaster.calibration_.items()},
        horizons=forecaster.horizons, direct_horizons=forecaster.direct_horizons,
        step=forecaster.calendar_.step,
        metadata={"dataset": ds.name, "fingerprint": ds.fingerprint, "data_end": forecaster.data_end_,
                  "selection": selection_record(forecaster)},
    )
    example = pf.frame[pf.frame["year"] == max(forecaster.data_end_.values())].head(5).reset_index(drop=True)
    example = example.astype({c: float for c in pf.names})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the hint about integer columns (year) is expected
        signature = infer_signature(example, python_model.predict(None, example))
    return ModelPackage(python_model=python_model, signature=signature, input_example=example,
                        pip_requirements=[f"lightgbm=={lightgbm.__version__}", f"pandas=={pd.__version__}",
                                          f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"])


def train_and_register(ds: Dataset, *, features: PanelFeatures | None = None, targets: Sequence[str] | None = None,
                       origins: Sequence[int] | None = None, horizons: int = 5,
                       params: dict[str, Any] | None = None, tune: bool = False, seed: int = 0, n_jobs: int = 2,
                       progress: bool = False, comparison: str = "",
                       members: Sequence[str] | None = None, package: Packager | None = None,
                       forecast_horizons: int | None = None) -> TrainResult:
    """Backtest, fit the final model on all data, log everything to MLflow and register ``challenger``.

    ``package`` builds the registered model from the final forecaster (default :func:`feature_row_package`);
    ``forecast_horizons`` (default ``horizons``) is how far the final model forecasts: beyond the backtest's
    ``horizons`` its forecasts chain the direct ones (the backtested horizons are unchanged).

    Logs parameters, the dataset fingerprint and git commit (tags), the feature list with groups, backtest
    metrics per target, horizon and group (interval coverage included), the final model's combination
    (parameters ``weights_<target>_h<h>`` and ``selected_on_<target>_h<h>``, artifact ``backtest/selection.json``;
    the backtest's weights per origin in ``backtest/selection_backtest.csv``), tables and plots as artifacts,
    and the fitted model as one pyfunc model registered as ``tiecast-<dataset>`` with the alias ``challenger``.
    """
    import mlflow

    client = _client()
    pf = features if features is not None else build_features(ds, progress=progress)
    result = backtest(ds, pf, targets=targets, origins=origins, horizons=horizons, params=params, tune=tune,
                      members=members, seed=seed, n_jobs=n_jobs, progress=progress)
    fit_targets = [t for t, p in result.plans.items() if p.origins]
    if not fit_targets:
        raise ConfigError("no target has enough data to train on: " + "; ".join(p.note for p in result.plans.values()))
    overrides = {k: v for k, v in result.params.items() if DEFAULT_PARAMS.get(k) != v}
    y_cols = ["unit_id", "year", *fit_targets] + ([ds.break_column] if ds.break_column else [])
    with stage(progress, "final model", len(fit_targets)) as advance:
        final_horizons = max(horizons, forecast_horizons or horizons)
        # the backtested horizons stay direct; longer ones are chained from them
        direct = ({} if final_horizons == horizons
                  else {"direct_horizons": min(horizons, DirectForecaster().direct_horizons)})
        forecaster = DirectForecaster(targets=fit_targets, horizons=final_horizons, **direct, features=pf.names,
                                      feature_groups=pf.groups(), members=members, params=overrides,
                                      break_column=ds.break_column, step=ds.step, n_jobs=n_jobs, seed=seed)
        # The backtest's member forecasts of earlier cutoffs are reused where its settings match (same result).
        forecaster.fit(pf.frame, ds.panel[y_cols], reuse=result.rolls)
        advance(len(fit_targets))
    latest = _latest_forecasts(forecaster, pf)
    name = model_name(ds.name)
    exp_id = _experiment_id(client, name)
    commit, dirty = git_commit()
    with stage(progress, "mlflow logging", 3) as advance, \
            mlflow.start_run(experiment_id=exp_id, run_name=f"train {time.strftime('%Y-%m-%d %H:%M')}") as run:
        mlflow.set_tags({
            "dataset": ds.name, "dataset_fingerprint": ds.fingerprint, "dataset_path": str(ds.path),
            "git_commit": commit, "git_dirty": str(dirty).lower(), "mlflow.source.git.commit": commit,
            "primary_target": ds.primary_target, "primary_metric": f"{ds.primary_target} MAPE (%) mean over horizons",
        })
        plan_params: dict[str, Any] = {mlflow_key("origins", t): ",".join(map(str, p.origins))
                                       for t, p in result.plans.items()}
        plan_params.update({mlflow_key("horizons", t): p.horizons for t, p in result.plans.items()})
        mlflow.log_params({**{f"lgbm_{k}": v for k, v in result.params.items()}, "horizons": horizons,
                           "seed": seed, "n_jobs": n_jobs, "tune": tune,
                           "members": ",".join(s.name for s in forecaster.member_specs()),
                           "selection_origins": forecaster.selection_origins, "step": forecaster.calendar_.step,
                           "calibration_origins": forecaster.calibration_origins, "n_features": len(pf.names),
                           "targets": ",".join(fit_targets), **plan_params, **_selection_params(forecaster)})
        mlflow.log_metrics(_metrics_to_log(result, ds))
        advance()
        with tempfile.TemporaryDirectory() as tmp:
            _write_artifacts(Path(tmp), result, ds, pf, latest, comparison, forecaster)
            mlflow.log_artifacts(tmp, artifact_path="backtest")
        advance()
        pkg = (package or feature_row_package)(forecaster, ds, pf, seed, n_jobs)
        try:
            info = mlflow.pyfunc.log_model(
                name="model", python_model=pkg.python_model, signature=pkg.signature,
                input_example=pkg.input_example, registered_model_name=name, code_paths=pkg.code_paths,
                pip_requirements=pkg.pip_requirements, metadata=pkg.metadata or None,
            )
        finally:
            if pkg.cleanup is not None:
                pkg.cleanup()
        version = str(info.registered_model_version)
        client.set_registered_model_alias(name, CHALLENGER, version)
        client.set_model_version_tag(name, version, "dataset_fingerprint", ds.fingerprint)
        client.set_model_version_tag(name, version, "git_commit", commit)
        if PRIMARY_METRIC in (metrics := _metrics_to_log(result, ds)):
            client.set_model_version_tag(name, version, PRIMARY_METRIC, f"{metrics[PRIMARY_METRIC]:.6f}")
        advance()
        run_id = run.info.run_id
    return TrainResult(run_id=run_id, experiment=name, model_name=name, version=version, backtest=result,
                       forecaster=forecaster, tracking_uri=tracking_uri(), model=pkg.python_model)


@dataclass(frozen=True)
class PromotionResult:
    """Outcome of :func:`promote`: versions, their primary metric (lower is better) and the decision."""

    model_name: str
    challenger_version: str
    challenger_metric: float
    champion_version: str | None
    champion_metric: float | None
    promoted: bool
    reason: str
    forced: bool


def _version_metric(client: Any, name: str, alias: str) -> tuple[Any, float]:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise LookupError(alias) from exc
    run = client.get_run(mv.run_id)
    value = run.data.metrics.get(PRIMARY_METRIC)
    if value is None:
        raise TrackingError(f"run {mv.run_id} of {name} version {mv.version} ({alias}) has no metric "
                            f"'{PRIMARY_METRIC}'; retrain it with `tiecast train`")
    return mv, float(value)


def _backtest_split(client: Any, run_id: str) -> str:
    """The backtest split a run's primary metric was measured on: primary target, origins and horizons."""
    run = client.get_run(run_id)
    target = run.data.tags.get("primary_target", "")
    params = run.data.params
    return (f"{target} origins {params.get(mlflow_key('origins', target), '?')}, "
            f"horizons {params.get(mlflow_key('horizons', target), '?')}")


def promote(ds_name: str, force: bool = False, data: str | None = None) -> PromotionResult:
    """Move the alias ``champion`` to the ``challenger`` version of ``tiecast-<ds_name>`` when the
    challenger's backtest beats the champion's on the primary metric (mean MAPE over horizons of the primary
    target, lower is better), when there is no champion yet, or when ``force`` (recorded as run/version tags).
    ``data`` is how the user named the dataset (folder or bundled name), for error messages.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    name = model_name(ds_name)
    data = data or ds_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise TrackingError(f"no registered model '{name}' in {tracking_uri()}: run `tiecast train --data "
                            f"{data}` first") from None
    try:
        challenger, c_metric = _version_metric(client, name, CHALLENGER)
    except LookupError:
        raise TrackingError(f"model '{name}' has no '{CHALLENGER}' version: run `tiecast train --data {data}`"
                            ) from None
    try:
        champion, k_metric = _version_metric(client, name, CHAMPION)
    except LookupError:
        champion, k_metric = None, None
    if champion is not None and str(champion.version) == str(challenger.version):
        return PromotionResult(name, str(challenger.version), c_metric, str(champion.version), k_metric, False,
                               f"version {challenger.version} is already the champion", force)
    split_c = _backtest_split(client, challenger.run_id)
    split_k = _backtest_split(client, champion.run_id) if champion is not None else split_c
    data_c = client.get_run(challenger.run_id).data.tags.get("dataset_fingerprint", "?")
    data_k = client.get_run(champion.run_id).data.tags.get("dataset_fingerprint", "?") if champion else data_c
    if data_c != data_k:  # same name, other data (a revision, another region set): metrics not comparable
        split_c, split_k = f"{split_c}, data {data_c[:12]}", f"{split_k}, data {data_k[:12]}"
    if champion is None:
        promoted, reason = True, "no champion yet"
    elif data_c != data_k and not force:
        promoted, reason = False, (
            f"backtests are not comparable: trained on different data (challenger {split_c}, champion {split_k}); "
            "their errors were measured on different series; use --force to promote the challenger anyway")
    elif split_c != split_k and not force:
        promoted, reason = False, (
            f"backtests are not comparable (challenger {split_c}, champion {split_k}): retrain with the "
            "champion's --origins and --horizons, or use --force")
    elif split_c != split_k:
        promoted, reason = True, f"forced although the backtests differ (challenger {split_c}, champion {split_k})"
    elif c_metric < k_metric:  # type: ignore[operator]
        promoted, reason = True, f"challenger beats champion ({c_metric:.4f} < {k_metric:.4f})"
    elif force:
        promoted, reason = True, f"forced although challenger does not beat champion ({c_metric:.4f} >= {k_metric:.4f})"
    else:
        promoted, reason = False, f"challenger does not beat champion ({c_metric:.4f} >= {k_metric:.4f})"
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, str(challenger.version))
        beaten = k_metric is not None and c_metric < k_metric
        how = "forced" if force and champion is not None and (split_c != split_k or not beaten) else "metric"
        client.set_tag(challenger.run_id, "promoted", how)
        client.set_tag(challenger.run_id, "promotion_reason", reason)
        client.set_model_version_tag(name, str(challenger.version), "promoted", how)
    return PromotionResult(name, str(challenger.version), c_metric,
                           str(champion.version) if champion is not None else None, k_metric, promoted, reason,
                           force)
