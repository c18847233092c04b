"""Explanation reports (tiecast.serving): content, self-containedness, the fast scenario path, and how a person
sees them – rendered in real headless Chromium (no CJK system font is needed: the embedded one must render)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_training_backtest import FAST, write_synthetic

from tiecast.common import ConfigError
from tiecast.features import builtin_scenario, load_dataset
from tiecast.serving import (
    CSS_FAMILY,
    TIER_RULE,
    chromium_path,
    dump_dom,
    font_path,
    load_evidence,
    print_pdf,
    report_context,
    screenshot,
    summary_html,
    unit_numbers,
    write_unit_report,
)
from tiecast.serving._report import PINNED_PLACEBO, PINNED_TABLE, PLACEBO_COLUMNS, TABLE_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
UNIT = "47210"  # 영주시: a small provincial city and a designated population-decline area
PROBE_TEXT = "인구 전망"
MAX_BYTES = 2_000_000
HORIZON = 3


# ---- fast: no model -------------------------------------------------------------------------------------------
def test_pinned_evidence_equals_the_validation_results() -> None:
    """An installed wheel has no benchmarks/ folder: its reports cite the pinned copy, which must be the reported
    estimator's current validation (`tiecast effects validate --seed 0 --out benchmarks/results/effects_validation`;
    update PINNED_TABLE / PINNED_PLACEBO in serving/_report.py when it changes). The what-if comparison row may lag."""
    folder = ROOT / "benchmarks" / "results" / "effects_validation"
    if not (folder / "table.csv").is_file():
        pytest.skip("benchmarks/results/effects_validation is not in this checkout")
    ev = load_evidence(folder)
    pinned = pd.DataFrame(PINNED_TABLE, columns=TABLE_COLUMNS)
    assert load_evidence().source.startswith("tiecast effects validate (benchmarks")  # the checkout's folder
    for frame in (ev.table, pinned):
        assert list(frame[["estimator", "role"]].itertuples(index=False, name=None)) == [
            (e, r) for r in ("focal", "partner") for e in ("zero", "forecaster_whatif", "dml")]
    reported = ev.table["estimator"].isin(["dml", "zero"]).to_numpy()
    pd.testing.assert_frame_equal(ev.table.loc[reported, TABLE_COLUMNS].reset_index(drop=True),
                                  pinned.loc[reported].reset_index(drop=True), check_dtype=False, rtol=1e-9)
    pd.testing.assert_frame_equal(ev.placebo[PLACEBO_COLUMNS], pd.DataFrame(PINNED_PLACEBO, columns=PLACEBO_COLUMNS),
                                  check_dtype=False, rtol=1e-9)


def test_report_command_rejects_bad_options_before_any_work(tmp_path: Path) -> None:
    from tiecast.cli import main

    assert main(["report", "--unit", "영주시", "--out", str(tmp_path / "x.txt")]) == 1
    assert main(["report", "--all", "--out", str(tmp_path / "x.html")]) == 1
    assert main(["report", "--summary", "--scenario", "hub", "--out", str(tmp_path / "s.html")]) == 1
    assert not list(tmp_path.iterdir())


def test_chromium_is_installed() -> None:
    """The browser checks below need Chromium; .ci/run installs it (apt-get install -y chromium)."""
    try:
        chromium_path()
    except ConfigError as exc:
        pytest.fail(f"headless Chromium is missing, so the reports cannot be checked in a browser: {exc}")


# ---- the bundled data: one fit for the module -----------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx(korea):  # type: ignore[no-untyped-def]
    # 3 years keeps the effect model (one fit per horizon up to 5) and so the test short; the report is the same
    return report_context(korea, horizons=HORIZON, params=FAST)


@pytest.fixture(scope="module")
def report(ctx, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return write_unit_report(ctx, "영주시", tmp_path_factory.mktemp("report") / f"report_{UNIT}.html")


@pytest.mark.slow
def test_unit_report_is_self_contained_and_complete(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert report.stat().st_size < MAX_BYTES
    assert not re.search(r"(src|href)\s*=\s*[\"'](https?:|//)", text) and "<link" not in text and "<script" not in text
    assert "url(http" not in text and "@import" not in text
    images = re.findall(r'<img [^>]*src="([^"]{0,30})', text)
    assert len(images) == 4 and all(s.startswith("data:image/png;base64,") for s in images)
    assert re.search(rf"@font-face{{font-family:'{CSS_FAMILY}';font-weight:400;[^}}]*base64,", text)
    assert text.count('<section class="page"') == 5
    for words in ("1. 전망", "2. 왜 이런 전망인가", "3. 협력 효과", "4. 가장 강한 상호 연계", "5. 읽을 때 유의할 점",
                  "영주시", "봉화군", "비슷한 도시보다", f"{HORIZON}년 인구 성장률을", "SHAP은 인과가 아닙니다",
                  "80% 구간", "DML", "위약(placebo)", "인구감소지역", "구조적 단절", "외삽"):
        assert words in text, words


@pytest.mark.slow
def test_english_report(ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_unit_report(ctx, UNIT, tmp_path / "en.html", lang="en", scenario="hub")
    text = html.unescape(path.read_text(encoding="utf-8"))
    for words in ("1. Outlook", "2. Why this forecast", "3. The cooperation effect", "SHAP is not causal",
                  "similar units", "scenario 'hub'", 'lang="en"'):
        assert words in text, words


@pytest.mark.slow
def test_report_numbers_are_the_reported_estimate(ctx) -> None:  # type: ignore[no-untyped-def]
    """The report's fast path gives exactly what `answer` reports, and each partner's share is the tie-strength
    change of a scenario with that partner alone."""
    import dataclasses

    sf = ctx.sf
    for unit in (UNIT, "43130"):
        num = unit_numbers(ctx, unit)
        sc = builtin_scenario("top3", unit, sf.origin)
        want = sf.answer(sc, units=[unit, *num.partners], methods=("dml",))
        key = ["unit_id", "target", "year"]
        got = num.answer.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want.sort_values(key).reset_index(drop=True)[got.columns],
                                      check_dtype=False)
        assert len(num.alone) == 3
        for p in num.partners:
            one = sf.apply(dataclasses.replace(sc, id="alone", partners=(p,)))
            dt = sf.delta_treatment(one, full_measures=False)[0].get(unit)
            assert num.alone.set_index("partner").loc[p, "delta_t"] == pytest.approx(dt, rel=1e-12)
        assert (num.ties["origin"] == unit).all() and num.ties["tie_index"].is_monotonic_decreasing


@pytest.mark.slow
def test_response_levels_follow_the_stated_rule(ctx) -> None:  # type: ignore[no-untyped-def]
    t = ctx.tiers
    assert len(t) == 229 and set(t["tier"]) <= {"1", "2", "3", "4"}
    assert (t.loc[t["tier"] == "1", "upper90"] < 0).all()
    assert ((t.loc[t["tier"] == "2", "upper80"] < 0) & (t.loc[t["tier"] == "2", "upper90"] >= 0)).all()
    assert ((t.loc[t["tier"] == "3", "change"] < 0) & (t.loc[t["tier"] == "3", "upper80"] >= 0)).all()
    assert (t.loc[t["tier"] == "4", "change"] >= 0).all()
    assert "80% interval below zero" in TIER_RULE and (t["year"] == ctx.origin + HORIZON).all()


@pytest.mark.slow
def test_summary(ctx) -> None:  # type: ignore[no-untyped-def]
    text = summary_html(ctx)
    small = ctx.ds.units.loc[ctx.ds.units["small_mid_city"] == 1, "unit_id"].astype(str)
    for u in small:
        assert f'href="report_{u}.html"' in text
    assert len(ctx.gains) >= len(small)
    assert text.count("<img") == 4 and "인구감소지역 지정과의 비교" in text and "대응 수준 규칙" in text
    assert "<script" not in text and not re.search(r"(src|href)=\"https?:", text)


# ---- in a real browser ----------------------------------------------------------------------------------------
PROBE = """<script>
document.fonts.ready.then(function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  function width(family) {
    var s = document.createElement('span');
    s.style.cssText = 'position:absolute;white-space:nowrap;font-size:40px;font-family:' + family;
    s.textContent = %(text)s; document.body.appendChild(s);
    var w = s.getBoundingClientRect().width; s.remove(); return w;
  }
  var out = {images: imgs.length, broken: broken, embedded: width("'%(family)s'"),
             fallback: width("'no-such-font-tiecast', monospace"), status: document.fonts.status,
             check: document.fonts.check("40px '%(family)s'", %(text)s),
             bodyFont: getComputedStyle(document.body).fontFamily};
  document.body.setAttribute('data-probe', JSON.stringify(out));
});
</script>"""


def _expected_width(text: str, size: float = 40.0) -> float:
    """The width of ``text`` set in NanumGothic, from the font file's advance widths."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path()))
    cmap, hmtx = font.getBestCmap(), font["hmtx"]
    return sum(hmtx[cmap[ord(c)]][0] for c in text) * size / font["head"].unitsPerEm


def _require_chromium() -> None:
    try:
        chromium_path()
    except ConfigError as exc:
        pytest.fail(f"headless Chromium is missing (apt-get install -y chromium; .ci/run installs it): {exc}")


@pytest.mark.slow
def test_report_renders_in_chromium_with_the_embedded_hangul_font(report: Path, tmp_path: Path) -> None:
    _require_chromium()
    page = report.read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    script = PROBE % {"text": json.dumps(PROBE_TEXT), "family": CSS_FAMILY}
    probe.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = dump_dom(probe)
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, "the probe script did not run (no data-probe attribute in the DOM)"
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["images"] == page.count("<img") and result["broken"] == 0, result
    assert result["status"] == "loaded" and result["check"], result
    assert CSS_FAMILY in result["bodyFont"]
    # the Hangul string is set in our font: its width is NanumGothic's advance widths, not a fallback's (tofu)
    assert result["embedded"] == pytest.approx(_expected_width(PROBE_TEXT), abs=1.0), result
    assert abs(result["embedded"] - result["fallback"]) > 5, result

    shot = screenshot(report, tmp_path / "report.png", width=900, height=1300)
    from PIL import Image

    with Image.open(shot) as im:
        gray = np.asarray(im.convert("L"), dtype=float)
    assert gray.shape == (1300, 900) and (gray < 200).mean() > 0.03  # text and charts, not a blank page


@pytest.mark.slow
def test_report_prints_to_one_a4_page_per_section(report: Path, tmp_path: Path) -> None:
    _require_chromium()
    pdf = print_pdf(report, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    try:
        from pypdf import PdfReader

        pages = len(PdfReader(str(pdf)).pages)
    except ImportError:
        pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    assert pages == report.read_text(encoding="utf-8").count('<section class="page"') == 5


# ---- any dataset: every report at once --------------------------------------------------------------------------
def _square_boundaries(units: pd.DataFrame) -> dict:
    feats = []
    for r in units.itertuples(index=False):
        x, y = float(r.lon), float(r.lat)
        ring = [[x - 0.2, y - 0.2], [x + 0.2, y - 0.2], [x + 0.2, y + 0.2], [x - 0.2, y + 0.2], [x - 0.2, y - 0.2]]
        feats.append({"type": "Feature", "properties": {"unit_id": r.unit_id},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "features": feats}


@pytest.mark.slow
def test_report_all_on_another_dataset(tmp_path: Path) -> None:
    """`tiecast report --all` end to end on another dataset (no coordinates, no panel tie columns, no designation,
    Korean names, boundaries as squares): every unit's report and the summary from one fit, rendered by two
    forked workers, with one font subset for all pages."""
    n = 12
    folder = write_synthetic(tmp_path / "synth", n_units=n, first=2006, last=2019, yearly_flows=0.5, flow_seed=2)
    ids = [f"{i:05d}" for i in range(1, n + 1)]
    units = pd.read_csv(folder / "units.csv", dtype={"unit_id": str})
    units["name"] = [f"가상시{i}" for i in range(len(units))]
    units.to_csv(folder / "units.csv", index=False)
    squares = units.assign(lat=35 + (np.arange(n) // 4) * 0.5, lon=127 + (np.arange(n) % 4) * 0.5)
    (folder / "boundaries.geojson").write_text(json.dumps(_square_boundaries(squares)), encoding="utf-8")
    out = tmp_path / "out"
    code = "import sys; from tiecast.cli import main; raise SystemExit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", code, "report", "--data", str(folder), "--all", "--horizon", "3",
                          "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "wrote 12 unit reports and summary.html" in run.stdout
    paths = sorted(out.glob("*.html"))
    assert len(paths) == n + 1
    fonts = {re.search(r"base64,([A-Za-z0-9+/=]{0,200})", p.read_text(encoding="utf-8")).group(1) for p in paths}
    assert len(fonts) == 1  # one subset embedded in every page
    one = (out / f"report_{ids[0]}.html").read_text(encoding="utf-8")
    assert "가상시0" in one and one.count("<img") == 4 and "<script" not in one
    summary = (out / "summary.html").read_text(encoding="utf-8")
    small = load_dataset(folder).units.query("small_mid_city == 1")["unit_id"]
    assert len(small) and all(f'href="report_{u}.html"' in summary for u in small)


@pytest.mark.slow
def test_reports_are_logged_to_an_mlflow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from tiecast.common import TrackingError
    from tiecast.serving import log_reports_to_mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("reports", artifact_location=(tmp_path / "art").as_uri()))
    page = tmp_path / "summary.html"
    page.write_text("<html></html>", encoding="utf-8")
    log_reports_to_mlflow([page], run.info.run_id)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "reports")] == ["reports/summary.html"]
    with pytest.raises(TrackingError, match="cannot log the reports"):
        log_reports_to_mlflow([page], "0" * 32)


def test_report_command_checks_the_unit_and_scenario_before_fitting(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tiecast.cli import main

    assert main(["report", "--unit", "없는군", "--out", str(tmp_path / "x.html")]) == 1
    assert "is neither a unit code nor a unit name" in capsys.readouterr().err
    assert main(["report", "--unit", "영주시", "--scenario", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "x.html")]) == 1
    assert "no such file" in capsys.readouterr().err
