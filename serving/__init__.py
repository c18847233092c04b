"""tiecast.serving: explanation reports for officials, built on the fitted models of :mod:`tiecast.training`.

Public API (everything else is private):

- :func:`report_context` -> :class:`ReportContext` – fit the models once (or reuse a fitted
  :class:`~tiecast.training.ScenarioForecaster`) and precompute what every report needs;
- :func:`write_unit_report` (:func:`unit_report_html`) – one unit's self-contained HTML report: trajectories
  with and without cooperation, SHAP by feature group and plain-language drivers, the cooperation effect and its
  partners, the strongest ties with a map, caveats; :func:`write_summary` (:func:`summary_html`) – the national
  summary; :func:`write_all_reports` – every unit and the summary; :func:`log_reports_to_mlflow`;
  :data:`TIER_RULE` – the response levels; :func:`load_evidence` – the effect validation the caveats cite;
- :func:`explain_forecast` -> :class:`Explanation`, :func:`booster_contributions` (LightGBM ``pred_contrib``),
  :func:`top_drivers` -> :class:`Driver` – SHAP explanations of a fitted forecaster;
- :func:`print_pdf`, :func:`screenshot`, :func:`dump_dom`, :func:`chromium_path` – headless Chromium;
- :func:`font_path`, :func:`font_face_css`, :data:`FONT_FAMILY`, :data:`CSS_FAMILY` – the bundled Korean font
  (NanumGothic, OFL, from the package koreanize-matplotlib).

- :class:`TiecastService` – the champion as one MLflow pyfunc model answering requests of questions (unit,
  target, horizon, scenario) with forecasts, cooperation effects and SHAP explanations
  (:func:`answer_questions`, :data:`REQUEST_COLUMNS`, :data:`RESPONSE_COLUMNS`, :data:`MAX_QUESTIONS`);
  :func:`service_package` builds it for :func:`tiecast.training.train_and_register`; :func:`load_service`,
  :func:`serve_command`, :func:`predict_file` – the scoring server and offline batch answers.

Imports only :mod:`tiecast.common`, :mod:`tiecast.features` and :mod:`tiecast.training` (public names). Names are
imported on first use, so that the served model loads without the report machinery (matplotlib, Chromium).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "chromium_path": "_browser",
    "dump_dom": "_browser",
    "print_pdf": "_browser",
    "screenshot": "_browser",
    "Driver": "_explain",
    "Explanation": "_explain",
    "booster_contributions": "_explain",
    "explain_forecast": "_explain",
    "top_drivers": "_explain",
    "CSS_FAMILY": "_font",
    "FONT_FAMILY": "_font",
    "FONT_LICENSE": "_font",
    "font_face_css": "_font",
    "font_path": "_font",
    "DEFAULT_SCENARIO": "_report",
    "TIER_RULE": "_report",
    "Evidence": "_report",
    "ReportContext": "_report",
    "check_scenario": "_report",
    "load_evidence": "_report",
    "log_reports_to_mlflow": "_report",
    "report_context": "_report",
    "reported_rows": "_report",
    "resolve_unit": "_report",
    "summary_html": "_report",
    "unit_numbers": "_report",
    "unit_report_html": "_report",
    "write_all_reports": "_report",
    "write_summary": "_report",
    "write_unit_report": "_report",
    "LANGS": "_text",
    "MAX_QUESTIONS": "_service",
    "REQUEST_COLUMNS": "_service",
    "RESPONSE_COLUMNS": "_service",
    "TiecastService": "_service",
    "answer_questions": "_service",
    "service_package": "_package",
    "SERVED_HORIZONS": "_package",
    "read_request": "_package",
    "request_frame": "_package",
    "service_requirements": "_package",
    "package_service": "_package",
    "load_service": "_package",
    "serve_command": "_package",
    "serve_environment": "_package",
    "predict_file": "_package",
    "CANDIDATE_FACTOR": "_sweep",
    "ENGINES": "_sweep",
    "JAVA_HINT": "_sweep",
    "SWEEP_COLUMNS": "_sweep",
    "candidate_partners": "_sweep",
    "java_available": "_sweep",
    "response_schema": "_sweep",
    "run_sweep": "_sweep",
    "spark_session": "_sweep",
    "sweep_questions": "_sweep",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tiecast.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
