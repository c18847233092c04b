"""Words of the reports in Korean and English: feature labels, units, value formatting and plain-language drivers.

Feature names are composed from the panel's column names (``aging_ratio``), their derived forms (``_chg3``,
``_growth_3y``, ``_log``, ``partners_<variable>_<weights>``, ``<kind>_<measure>``) and, for a column nobody named
here (another dataset), the feature catalog's own description.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tiecast.common import ConfigError

__all__ = ["GROUP_LABELS", "LANGS", "check_lang", "feature_label", "format_change", "format_number",
           "format_pct", "format_value", "group_label", "peer_comparison", "unit_label"]

LANGS = ("ko", "en")

# Panel columns of the bundled data (other datasets fall back to the catalog description).
BASE_LABELS: dict[str, tuple[str, str]] = {
    "population": ("인구", "population"),
    "income": ("1인당 근로소득", "earned income per resident"),
    "households": ("세대 수", "households"),
    "household_size": ("세대당 인구", "persons per household"),
    "aging_ratio": ("65세 이상 비율", "share aged 65+"),
    "youth_ratio": ("청년(20–39세) 비율", "share aged 20–39"),
    "fertility": ("합계출산율", "total fertility rate"),
    "nat_increase": ("자연증가율", "natural increase rate"),
    "crude_marriage": ("조혼인율", "crude marriage rate"),
    "gross_in": ("전입자 수", "in-migrants"),
    "gross_out": ("전출자 수", "out-migrants"),
    "net_migration": ("순이동자 수", "net migration"),
    "in_rate": ("전입률", "in-migration rate"),
    "out_rate": ("전출률", "out-migration rate"),
    "net_rate": ("순이동률", "net migration rate"),
    "in_strength": ("다른 시군구에서 온 전입 규모", "in-flow from other units"),
    "out_strength": ("다른 시군구로 간 전출 규모", "out-flow to other units"),
    "in_deg_cent": ("전입 연결 중심성", "in-degree centrality"),
    "out_deg_cent": ("전출 연결 중심성", "out-degree centrality"),
    "deg_cent": ("이동망 연결 중심성", "degree centrality"),
    "pagerank": ("이동망 페이지랭크", "PageRank of the migration network"),
    "betweenness": ("이동망 매개 중심성", "betweenness centrality"),
    "closeness": ("이동망 근접 중심성", "closeness centrality"),
    "fiscal_indep": ("재정자립도", "fiscal independence ratio"),
    "fiscal_regime_2014": ("2014년 재정 항목 재분류 이후", "after the 2014 revenue reclassification"),
    "grdp_pc": ("1인당 지역내총생산", "GRDP per capita"),
    "employ_rate": ("고용률", "employment rate"),
    "doctor_per1000": ("인구 천 명당 의사 수", "physicians per 1,000 residents"),
    "car_per_capita": ("인구 천 명당 자동차 수", "cars per 1,000 residents"),
    "area_km2": ("면적", "land area"),
    "seoul_dist_km": ("서울까지의 거리", "distance to Seoul"),
    "earners": ("근로소득 신고자 수", "earned-income filers"),
    "pay_per_earner": ("신고자 1인당 급여", "pay per filer"),
    "earner_share": ("근로소득 신고자 비율", "share of residents filing earned income"),
    "contiguity_degree": ("맞닿은 시군구 수", "number of bordering units"),
    "borrowed_size_gravity_log": ("중력 가중 '빌린 규모'(주변 인구)", "borrowed size (gravity-weighted population)"),
    "gravity_access_log": ("잠재 접근성(거리 가중 인구)", "potential accessibility"),
    "gravity_decay": ("거리 감쇠 지수", "distance decay of the gravity model"),
}
KIND_LABELS: dict[str, tuple[str, str]] = {
    "migration": ("인구이동", "migration"), "trips": ("통행", "trips"), "commuting": ("통근", "commuting"),
    "contiguity": ("인접", "contiguity"), "gravity": ("중력 모형", "gravity"),
}
MEASURE_LABELS: dict[str, tuple[str, str]] = {
    "borrowed_size_observed_log": ("상대 지역 인구(빌린 규모)", "borrowed size"),
    "dominant_share": ("최대 상대 지역 비중", "share of the largest partner"),
    "flow_age": ("자료 경과 연수", "age of the flow data"),
    "hierarchy_level": ("위계 단계(0 = 중심지)", "hierarchy level (0 = hub)"),
    "is_hub": ("중심지 여부", "hub flag"),
    "pagerank": ("페이지랭크", "PageRank"),
    "partner_entropy": ("상대 지역 다양성", "partner diversity"),
    "reciprocal_strength_pk": ("양방향 교류 강도(천 명당)", "two-way exchange per 1,000 residents"),
    "reciprocated_share": ("양방향으로 맞춰진 교류 비율", "reciprocated share"),
}
GROUP_LABELS: dict[str, tuple[str, str]] = {
    "history": ("과거 추세", "past trend"),
    "demography": ("인구 구조·생활 여건", "demography and amenities"),
    "migration": ("인구 이동", "migration"),
    "ties": ("도시 간 연계", "inter-city ties"),
    "fiscal": ("재정", "fiscal capacity"),
    "income": ("소득·고용", "income and jobs"),
    "horizon": ("예측 기간", "forecast horizon"),
    "other": ("기타", "other"),
}
# Catalog units -> display unit (ko, en). Log units are shown as levels or % growth (see format_value).
UNIT_LABELS: dict[str, tuple[str, str]] = {
    "persons": ("명", "persons"), "households": ("세대", "households"),
    "persons/household": ("명/세대", "per household"), "%": ("%", "%"), "‰": ("‰", "‰"),
    "births/woman": ("명", "per woman"), "per 1,000 persons": ("명/천 명", "per 1,000"),
    "per 1,000 residents": ("/천 명", "per 1,000"), "km": ("km", "km"), "km²": ("km²", "km²"),
    "million KRW/person": ("백만 원", "million KRW"), "partners": ("곳", "units"), "years": ("년", "years"),
    "levels": ("단계", "levels"), "0/1": ("", ""), "0-1": ("", ""), "0-2": ("", ""), "index": ("", ""),
    "exponent": ("", ""),
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ConfigError(f"lang must be one of {', '.join(LANGS)}; got {lang!r}", parameter="lang")
    return lang


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "ko" else pair[1]


def group_label(group: str, lang: str) -> str:
    return _pick(GROUP_LABELS.get(group, (group, group)), lang)


def unit_label(unit: str, lang: str) -> str:
    return _pick(UNIT_LABELS.get(unit, (unit, unit)), lang)


def _base(name: str, lang: str, description: str | None) -> str:
    if name in BASE_LABELS:
        return _pick(BASE_LABELS[name], lang)
    m = re.fullmatch(r"([a-z]+)_(.+)", name)
    if m and m.group(1) in KIND_LABELS and m.group(2) in MEASURE_LABELS:
        kind, measure = _pick(KIND_LABELS[m.group(1)], lang), _pick(MEASURE_LABELS[m.group(2)], lang)
        return f"{kind} {measure}" if lang == "ko" else f"{measure} ({kind})"
    return description.split(" (at t)")[0] if description else name


def feature_label(name: str, lang: str, description: str | None = None) -> str:
    """Plain label of a feature, e.g. ``aging_ratio_chg3`` -> "65세 이상 비율 3년 변화"."""
    m = re.fullmatch(r"partners_(.+)_([a-z]+)", name)
    if m and m.group(2) in KIND_LABELS:
        inner, kind = feature_label(m.group(1), lang), _pick(KIND_LABELS[m.group(2)], lang)
        return f"{kind} 상대 지역의 {inner} 평균" if lang == "ko" else f"partners' {inner} ({kind}-weighted)"
    m = re.fullmatch(r"(.+)_growth_(\d+)y_lag1", name)
    if m:
        base = _base(m.group(1), lang, None)
        return f"{base} 전년도 1년 증가율" if lang == "ko" else f"{base} growth in the previous year"
    m = re.fullmatch(r"(.+)_growth_(\d+)y", name)
    if m:
        base = _base(m.group(1), lang, None)
        return f"{base} {m.group(2)}년 증가율" if lang == "ko" else f"{m.group(2)}-year {base} growth"
    for suffix, ko, en in (("_drift_recent", "최근 5년 연평균 증가율", "recent yearly growth (5 years)"),
                           ("_drift", "장기 연평균 증가율", "long-run yearly growth")):
        if name.endswith(suffix):
            base = _base(name[: -len(suffix)], lang, None)
            return f"{base} {ko}" if lang == "ko" else f"{base}, {en}"
    if name.endswith("_chg3"):
        base = _base(name[:-5], lang, None)
        return f"{base} 3년 변화" if lang == "ko" else f"3-year change in {base}"
    if name.endswith("_log") and name[:-4] in BASE_LABELS:
        return _base(name[:-4], lang, None)
    return _base(name, lang, description)


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def format_number(x: Any, digits: int = 0) -> str:
    x = _num(x)
    if not math.isfinite(x):
        return "–"
    return f"{x:,.{digits}f}"


def format_pct(x: Any, digits: int = 1, sign: bool = True) -> str:
    """A percentage (``x`` already in %)."""
    x = _num(x)
    if not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}%" if sign else f"{x:.{digits}f}%"


def format_change(x: Any, digits: int = 0, sign: bool = True) -> str:
    x = _num(x)
    if not math.isfinite(x):
        return "–"
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _digits(x: float) -> int:
    a = abs(x)
    return 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 0.1 else 3


def _display(value: float, unit: str) -> tuple[float, str]:
    """(value on the display scale, display kind): ``log persons`` -> persons, ``log points`` -> % growth."""
    if unit.startswith("log points"):
        return 100 * math.expm1(value), "growth"
    if unit.startswith("log "):
        return math.exp(value), unit[4:]
    return value, unit


def format_value(value: float, unit: str, lang: str) -> str:
    """A feature value with its unit, on a readable scale (levels instead of logs, growth in %)."""
    if value is None or not math.isfinite(value):
        return "자료 없음" if lang == "ko" else "missing"
    shown, kind = _display(value, unit)
    if kind == "growth":
        per_year = unit.endswith("per year")
        suffix = ("/년" if lang == "ko" else " a year") if per_year else ""
        return f"{shown:+.{max(_digits(shown), 1)}f}%{suffix}"
    if unit == "0/1":
        return ("예" if shown >= 0.5 else "아니오") if lang == "ko" else ("yes" if shown >= 0.5 else "no")
    label = unit_label(kind, lang)
    number = format_number(shown, _digits(shown))
    if label in ("%", "‰"):
        return f"{number}{label}"
    return f"{number} {label}".strip() if label else number


def peer_comparison(value: float, peer: float, unit: str, lang: str) -> str:
    """How a value compares with the peers' median: "비슷한 도시보다 8.1%p 높음" / "8.1 pp above similar units"
    (differences in percentage points for shares and growth rates, relative for positive amounts)."""
    if not (math.isfinite(value) and math.isfinite(peer)) or unit == "0/1":
        return ""
    a, kind = _display(value, unit)
    b, _ = _display(peer, unit)
    diff = a - b
    if kind in ("growth", "%"):
        amount = f"{abs(diff):.{1 if abs(diff) >= 1 else 2}f}" + ("%p" if lang == "ko" else " pp")
    elif a > 0 and b > 0 and kind != "‰":
        diff = a / b - 1
        amount = f"{abs(100 * diff):.0f}%"
    else:
        label = unit_label(kind, lang)
        number = format_number(abs(diff), min(_digits(diff), 2))
        amount = f"{number}{label}" if label in ("‰", "%") else f"{number} {label}".strip()
    if round(abs(diff), 4) == 0:
        return "비슷한 도시와 같은 수준" if lang == "ko" else "same as similar units"
    if lang == "ko":
        return f"비슷한 도시보다 {amount} {'높음' if diff > 0 else '낮음'}"
    return f"{amount} {'above' if diff > 0 else 'below'} similar units"
