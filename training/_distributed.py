"""LightGBM members trained on a Dask cluster: the boosters of the single-process fit, data-parallel over workers.

:func:`fit_gbm` trains one LightGBM member (``gbm``, ``gbm_per_h``, ``gbm_noties``, ...) of one target at one
origin year on exactly the rows the forecaster trains it on: the same :class:`RollingFit` settings as
:func:`backtest` and ``train`` (:class:`PairTable` pairs with ``t + h <= origin``, the columns supported at that
cutoff, the labels of :func:`training_sets`) and the same LightGBM parameters (``_lgb_params`` of
:data:`DEFAULT_PARAMS` and the overrides, same seed and rounds). Without a client it calls :func:`fit_boosters`,
the single-process code path of :class:`DirectForecaster`; with a ``distributed.Client`` each booster is trained
by ``lightgbm.dask.DaskLGBMRegressor`` (``tree_learner="data"``): the training rows are split into interleaved
partitions (row ``i`` goes to partition ``i mod partitions``, so each holds every origin year and horizon), each
partition is scattered to one worker (round robin), every worker bins and builds histograms of its own rows
only, and the workers merge their histograms over TCP (ports found free on each worker) every split. The result
is an ordinary :class:`lightgbm.Booster` (``to_local()``) that the existing prediction code reads
(:attr:`GbmFit.member` -> :func:`member_growth`, :func:`combined_growth`).

Distributed training is not bit-identical to the serial fit: each worker finds the histogram bin boundaries of a
share of the features from its own rows, and bagging draws per worker. ``tests/test_dask_training.py`` pins the
tolerance measured on the bundled Korean data.

The feature panel and the pair table are still built in the calling process and sent to the workers; what the
cluster spreads is LightGBM's binned dataset and histogram work (the memory that grows with rows x features x
rounds). Requires the ``scale`` extra (``dask[distributed]``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from tiecast.common import ConfigError
from tiecast.features import Dataset, PanelFeatures, build_features

from ._backtest import _forecaster, _targets_frame
from ._core import Member, member_growth
from ._model import (
    GBM_NAMES,
    MIN_TRAIN_ROWS,
    DirectForecaster,
    MemberSpec,
    _lgb_params,
    actual_growth,
    fit_boosters,
    training_sets,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["GbmFit", "fit_gbm"]

# Native LightGBM names of _lgb_params -> the scikit-learn constructor arguments of DaskLGBMRegressor. Names not
# listed are passed through as LightGBM parameters; num_threads is dropped (each worker uses its own threads).
_SKLEARN_NAMES = {
    "min_data_in_leaf": "min_child_samples", "bagging_fraction": "subsample", "bagging_freq": "subsample_freq",
    "feature_fraction": "colsample_bytree", "lambda_l2": "reg_lambda", "seed": "random_state",
}


@dataclass
class GbmFit:
    """One LightGBM member of one target fitted at one origin, serially or on a Dask cluster.

    ``boosters``: key 0 for a pooled booster (horizon as the last feature), else ``h`` (as :func:`fit_boosters`);
    ``columns``: the columns of the feature rows (``inputs``) the boosters read (all when None); ``rate``: the
    anchor column of an anchored member. ``origin`` is a calendar year; ``horizons`` the direct horizons (steps
    of ``step`` years). ``rows``: training pairs (summed over boosters); ``partitions``: Dask partitions of those
    rows (0 when serial); ``workers``: addresses of the Dask workers that held them (empty when serial);
    ``seconds``: wall time of the booster training (s; for Dask including sending the rows to the workers).
    ``units``, ``growth`` and ``actual``: the forecast and the observed log growth (log points, units x horizons,
    NaN where unknown) from the feature rows of ``origin``.
    """

    target: str
    member_name: str
    origin: int
    horizons: int
    step: int
    inputs: list[str]
    boosters: dict[int, lgb.Booster]
    columns: list[int] | None
    rate: int | None
    common: float | None
    rows: int
    partitions: int
    workers: list[str]
    seconds: float
    units: pd.Index
    growth: np.ndarray
    actual: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def member(self) -> Member:
        """The member as the forecast code reads it (:func:`member_growth`, :func:`combined_growth`)."""
        return Member(self.member_name, self.boosters, self.columns, self.rate, common=self.common)

    def predict_growth(self, X: pd.DataFrame) -> np.ndarray:
        """Log growth forecasts (rows x horizons, log points) from feature rows ``X`` (columns ``inputs``)."""
        matrix = X.reindex(columns=self.inputs).to_numpy(float)
        return member_growth(self.member, matrix, self.horizons, self.step)

    def mape(self) -> dict[int, float]:
        """Out-of-sample MAPE (%) of the levels per horizon over the units with an actual: ``100 |exp(g_hat - g)
        - 1|``, the backtest's ``mape`` (NaN where no unit has an actual)."""
        out = {}
        for h in range(1, self.horizons + 1):
            err = self.growth[:, h - 1] - self.actual[:, h - 1]
            err = err[np.isfinite(err)]
            out[h] = float(100 * np.mean(np.abs(np.expm1(err)))) if len(err) else float("nan")
        return out


def fit_gbm(ds: Dataset, target: str, origin: int, *, client: Client | None = None,
            features: PanelFeatures | None = None, horizons: int = 5, member: str = "gbm",
            params: dict[str, Any] | None = None, seed: int = 0, partitions: int | None = None) -> GbmFit:
    """Train the LightGBM member ``member`` of ``target`` at ``origin`` (calendar year: pairs with
    ``t + h <= origin``) as the forecaster does, on one process (``client=None``) or on a Dask cluster.

    ``features``: the feature panel of ``ds`` (built when None); ``horizons``: direct horizons 1..``horizons``
    (1–5); ``params``: LightGBM overrides of :data:`DEFAULT_PARAMS`; ``partitions``: Dask partitions of the
    training rows (default: one per worker; ignored without a client). The forecasts are from the feature rows of
    ``origin``; where ``origin + h`` is observed, :meth:`GbmFit.mape` scores them out of sample.
    """
    if target not in ds.targets:
        raise ConfigError(f"target {target!r} is not a target of dataset {ds.name!r}; allowed: "
                          f"{', '.join(ds.targets)}", parameter="targets")
    spec = MemberSpec.parse(member)
    if spec.kind != "gbm":
        raise ConfigError(f"member {member!r} has no LightGBM booster to train: use {GBM_NAMES}",
                          parameter="members")
    direct = DirectForecaster().direct_horizons
    if isinstance(horizons, bool) or not isinstance(horizons, (int, np.integer)) or not 1 <= horizons <= direct:
        raise ConfigError(f"horizons must be an integer from 1 to {direct} (the direct horizons; longer ones are "
                          f"chained from them); got {horizons!r}", parameter="horizons")
    workers = _workers(client) if client is not None else []
    pf = features if features is not None else build_features(ds)
    roll = _forecaster(ds, pf, horizons, dict(params or {}), seed, members=[member]).rolling_fit(
        pf.frame, _targets_frame(ds, target), target)
    calendar = roll.tm.calendar
    first, last = roll.tm.first_year(), roll.tm.last_year()
    if first is None or last is None:
        raise ConfigError(f"target {target!r} has no positive values in the panel", parameter="targets")
    if isinstance(origin, bool) or not isinstance(origin, (int, np.integer)) or not (
            calendar.on_grid(np.array([origin]))[0] and first <= calendar.period(origin) <= last):
        every = f", {calendar.describe()}" if calendar.describe() else ""
        raise ConfigError(f"origin must be a year with data of {target!r} ({calendar.year(first)}–"
                          f"{calendar.year(last)}{every}); got {origin!r}", parameter="origins")
    name = spec.name
    if name not in roll.specs:
        raise ConfigError(f"member {member!r} cannot be trained on dataset {ds.name!r}: its feature group is "
                          f"absent or leaves no features; groups: {', '.join(pf.groups())}", parameter="members")
    cutoff = calendar.period(origin)
    columns = roll._gbm_columns(name, cutoff)
    rate = roll.rates[name]
    relative = roll.is_relative(name, cutoff)
    sets = training_sets(roll.table, cutoff, roll.direct, spec.pooled, columns, rate, roll.step, relative)
    common = roll.table.common_rate(cutoff, roll.step, roll.direct)[0] if relative else None
    if not sets or (columns is not None and not columns):
        raise ConfigError(f"target {target!r} has fewer than {MIN_TRAIN_ROWS} (origin, target year) pairs with "
                          f"target year <= {origin}: choose a later origin", parameter="origins")
    rows = sum(len(y) for _, y in sets.values())
    smallest = min(len(y) for _, y in sets.values())
    n_parts = 0 if client is None else _check_partitions(partitions, len(workers), smallest)
    started = time.perf_counter()
    if client is None:
        boosters = fit_boosters(roll.table, cutoff, roll.direct, spec.pooled, roll.params, 1, roll.seed, columns,
                                rate, roll.step, relative)
    else:
        native, rounds = _lgb_params(roll.params, 1, roll.seed)
        boosters = {key: _dask_booster(client, X, y, native, rounds, n_parts, workers) for key, (X, y) in sets.items()}
    seconds = time.perf_counter() - started
    growth = member_growth(Member(name, boosters, columns, rate, common=common), roll._origin_rows(cutoff),
                           roll.direct, roll.step)
    return GbmFit(target=target, member_name=name, origin=int(origin), horizons=roll.direct, step=roll.step,
                  inputs=list(roll.inputs), boosters=boosters, columns=columns, rate=rate, common=common, rows=rows,
                  partitions=n_parts, workers=workers[:n_parts], seconds=seconds, units=roll.tm.units, growth=growth,
                  actual=actual_growth(roll.tm, cutoff, roll.direct), params=dict(roll.params))


def _workers(client: Client) -> list[str]:
    """Addresses of the client's workers (sorted); ConfigError when it has none or is not a running client."""
    try:
        info = client.scheduler_info()
    except Exception as exc:  # a closed client or an unreachable scheduler
        raise ConfigError(f"the Dask client does not answer ({type(exc).__name__}: {exc}); pass a running "
                          "distributed.Client, e.g. Client('tcp://scheduler:8786')", parameter="client") from exc
    workers = sorted(info.get("workers", {}))
    if not workers:
        raise ConfigError("the Dask cluster has no workers: start some (`dask worker tcp://scheduler:8786`) or "
                          "wait for them (client.wait_for_workers(2)) before training", parameter="client")
    return workers


def _check_partitions(partitions: int | None, n_workers: int, rows: int) -> int:
    n = n_workers if partitions is None else partitions
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= rows:
        raise ConfigError(f"partitions must be an integer from 1 to {rows} (the training rows of the smallest "
                          f"booster); got {partitions!r}", parameter="partitions")
    return int(n)


def _sklearn_params(native: dict[str, Any]) -> dict[str, Any]:
    """``_lgb_params``' native LightGBM settings as DaskLGBMRegressor arguments (same values, other names)."""
    return {_SKLEARN_NAMES.get(k, k): v for k, v in native.items() if k != "num_threads"}


def _dask_booster(client: Client, X: np.ndarray, y: np.ndarray, native: dict[str, Any], rounds: int,
                  partitions: int, workers: list[str]) -> lgb.Booster:
    """One booster trained data-parallel on the cluster: interleaved row partitions, one worker each (round
    robin), then the fitted model brought back as a local booster."""
    import dask.array as da  # the scale extra

    futures = []
    chunks_X, chunks_y = [], []
    for k in range(partitions):
        part_X, part_y = np.ascontiguousarray(X[k::partitions]), np.ascontiguousarray(y[k::partitions])
        fx, fy = client.scatter([part_X, part_y], workers=[workers[k % len(workers)]], hash=False)
        futures += [fx, fy]
        chunks_X.append(da.from_delayed(fx, shape=part_X.shape, dtype=part_X.dtype))
        chunks_y.append(da.from_delayed(fy, shape=part_y.shape, dtype=part_y.dtype))
    model = lgb.DaskLGBMRegressor(client=client, n_estimators=rounds, **_sklearn_params(native))
    try:
        with warnings.catch_warnings():
            # n_jobs: DaskLGBMRegressor gives each worker its own thread count instead
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored", category=UserWarning)
            model.fit(da.concatenate(chunks_X), da.concatenate(chunks_y))
    finally:
        client.cancel(futures)
    return model.to_local().booster_
