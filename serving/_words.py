"""The prose of the reports, Korean and English side by side (``str.format`` templates; values are escaped by the
caller and may hold markup)."""

from __future__ import annotations

from typing import Any

__all__ = ["WORDS", "w"]

WORDS: dict[str, tuple[str, str]] = {
    # ---- labels --------------------------------------------------------------------------------------------
    "observed": ("실적", "observed"),
    "baseline": ("기준 전망", "baseline"),
    "cooperation": ("협력 시나리오", "cooperation"),
    "band80": ("80% 구간", "80%"),
    "band90": ("90% 구간", "90%"),
    "coop80": ("협력 80%", "coop. 80%"),
    "coop90": ("협력 90%", "coop. 90%"),
    "persons": ("명", "persons"),
    "money": ("백만 원", "million KRW"),
    "small_mid": ("지방 중소도시", "small/mid provincial city"),
    "designated": ("인구감소지역(2021 지정)", "designated population-decline area (2021)"),
    "data_span": ("자료 {first}–{origin}년, 기준 연도 {origin}", "data {first}–{origin}, origin {origin}"),
    "response_level": ("대응 수준", "Response level"),
    "with_coop": ("협력 시나리오", "with cooperation"),
    "year": ("연도", "year"),
    "interval80": ("80% 구간", "80% interval"),
    "interval90": ("90% 구간", "90% interval"),
    "coop_col": ("협력 시", "cooperation"),
    "difference": ("차이", "difference"),
    "difference_title": ("{label}: 협력 시 – 기준", "{label}: with – without"),
    "yes": ("예", "yes"),
    "none": ("없음", "none"),
    "title": ("{name} ({unit}) – 인구·소득 전망과 협력 효과", "{name} ({unit}) – population and income outlook"),
    # ---- 1. outlook ----------------------------------------------------------------------------------------
    "h_outlook": ("1. 전망", "1. Outlook"),
    "intro": ("<p>이 보고서는 {name}의 인구와 1인당 근로소득이 앞으로 어떻게 변할지(기준 전망)와, 다른 도시와의 "
              "교류를 늘릴 때 어떻게 달라질지(협력 시나리오: {scenario})를 보여 줍니다. 굵은 선은 가장 가능성 높은 "
              "값, 음영은 실제 값이 들어올 것으로 예상되는 범위(80%·90% 예측 구간)입니다.</p>",
              "<p>This report shows how {name}'s population and earned income per resident are expected to develop "
              "(baseline) and how they would change with more exchange with other cities (cooperation scenario: "
              "{scenario}). Lines are the most likely values, shaded bands the 80% and 90% prediction "
              "intervals.</p>"),
    "scenario_factor": ("{partners}과(와)의 양방향 {kind} 흐름 ×{factor} ({start}{end}년부터, 시나리오 '{id}')",
                        "two-way {kind} flows x{factor} with {partners} (from {start}{end}, scenario '{id}')"),
    "scenario_quantile": ("{partners}과(와)의 연계 강도를 같은 거리·규모 집단의 {q} 분위까지 높임 ({start}{end}년부터, "
                          "시나리오 '{id}')",
                          "tie strength with {partners} raised to the {q} quantile of similar pairs (from "
                          "{start}{end}, scenario '{id}')"),
    # ---- 2. why ------------------------------------------------------------------------------------------------
    "h_why": ("2. 왜 이런 전망인가", "2. Why this forecast"),
    "typical": ("보통의 시군구", "typical unit"),
    "this_unit": ("이 시군구 전망", "this unit"),
    "combination": ("결합(추세·무변화 모형)", "combination (trend, no-change)"),
    "growth_title": ("{label}: {years}년 성장률 (%p)", "{label}: {years}-year growth (pp)"),
    "top_drivers": ("{label}: 주요 요인 ({start} → {end})", "{label}: top drivers ({start} → {end})"),
    "why_text": ("<p>아래 그림은 예측 모델(LightGBM)이 이 시군구의 {h}년 성장률을 '보통의 시군구'(학습 자료의 평균 "
                 "예측)에서 출발해 어떤 요인 묶음 때문에 높이거나 낮췄는지를 SHAP 값으로 보여 줍니다. 단위는 {h}년 "
                 "로그 성장률의 %p입니다(모델은 연평균 성장률을 배우므로 기여도에 {h}을 곱함). 막대 '결합'은 예측이 "
                 "LightGBM과 단순 추세·무변화 모형의 가중 평균({weights})이라서 생기는 부분입니다. '비슷한 도시'는 "
                 "{origin}년 인구 규모 5분위 중 같은 분위의 {peers}개 시군구 중앙값입니다.</p>",
                 "<p>The chart shows, with SHAP values, how the forecasting model (LightGBM) moves this unit's "
                 "{h}-year growth away from a 'typical unit' (its average prediction over the training data), by "
                 "group of features. Units: percentage points of {h}-year log growth (the model learns yearly growth, "
                 "so contributions are multiplied by {h}). The 'combination' bar is the part due to the forecast "
                 "being a weighted mean of LightGBM and simple trend/no-change members ({weights}). 'Similar units' "
                 "= the median of the {peers} units in the same population quintile in {origin}.</p>"),
    "why_caution": ("<p class='note'>SHAP은 모델이 무엇에 반응해 이 값을 예측했는지를 설명할 뿐, 그 요인이 인구를 "
                    "바꾸는 원인이라는 뜻이 아닙니다. 정책 효과는 다음 장의 협력 효과 추정을 보십시오.</p>",
                    "<p class='note'>SHAP explains what the model responds to, not what causes growth; for the "
                    "effect of a policy see the cooperation estimate on the next page.</p>"),
    # ---- 3. cooperation ------------------------------------------------------------------------------------
    "h_coop": ("3. 협력 효과", "3. The cooperation effect"),
    "coop_head": ("<p><b>{scenario}</b>일 때, {year}년 {name}의 인구는 기준 전망보다 <b>{diff}</b>({pct}) 많을 것으로 "
                  "추정됩니다. 80% 구간 {i80}, 90% 구간 {i90}{zero}.</p>",
                  "<p><b>{scenario}</b>: in {year} {name}'s population is estimated <b>{diff}</b> ({pct}) above the "
                  "baseline; 80% interval {i80}, 90% interval {i90}{zero}.</p>"),
    "coop_zero": (" (0을 포함: 효과가 없을 가능성도 배제할 수 없음)",
                  " (includes zero: no effect cannot be ruled out)"),
    "coop_why": ("<p><b>두 궤적의 차이는 어디서 오나.</b> 차이는 예측 모델을 다시 돌린 것이 아니라 별도의 효과 "
                 "추정치(<b>{method}</b>, 이중 기계학습)에서 옵니다. 시나리오는 상대 지역과의 이동을 늘려 {name}의 "
                 "<i>양방향으로 맞춰진 이동</i>(전입과 전출 중 서로 짝이 맞는 부분)을 인구 천 명당 {b0}명에서 "
                 "{b1}명으로 "
                 "늘리고, 교류 강도(로그)는 {dt} 오릅니다. {first}–{origin}년 자료에서 교류 강도가 오른 시군구는 과거 "
                 "성장, 인구 구조, 재정, 연도가 같은 시군구보다 더 성장했으며, 그 누적 승수는 교류 강도 1당 연 "
                 "{theta}%p입니다. 이를 {k}년 적용하면 {year}년 인구가 {effect} 달라집니다. 구간은 추정의 "
                 "표준오차(시군구 군집)에 효과의 {allowance}를 모델 오차 여유분으로 더한 것입니다. 교류 강도가 바뀌지 "
                 "않는 시군구는 이 추정에서 효과가 0입니다(제3 지역 파급은 반영하지 않음).</p>",
                 "<p><b>Where the difference between the trajectories comes from.</b> Not from re-running the "
                 "forecaster but from a separate effect estimate (<b>{method}</b>, double machine learning). The "
                 "scenario raises {name}'s <i>balanced two-way migration</i> (the part of in- and out-moves matched "
                 "in both directions) from {b0} to {b1} per 1,000 residents, a change of {dt} in log tie strength. "
                 "In the data {first}–{origin}, units whose tie strength rose grew more than units with the same past "
                 "growth, demography, fiscal capacity and year, by a cumulative multiplier of {theta} pp a year per "
                 "unit of tie strength; over {k} years that is {effect} in {year}. The interval adds a model-error "
                 "allowance of {allowance} of the effect to the unit-clustered standard error. Units whose tie "
                 "strength does not change get no effect from this estimate (spillovers to third units are not "
                 "modelled).</p>"),
    "coop_partners": ("<p><b>어떤 상대가 효과를 이끄나.</b> '단독 효과'는 각 상대와의 흐름만 늘렸을 때의 {name} 효과"
                      "(같은 추정, {year}년)이고, 비중은 그 합에 대한 몫입니다(짝이 맞는 이동은 상대별로 더해지지 "
                      "않으므로 합은 전체 효과와 다를 수 있음). 전출·전입은 {flows} 흐름(명), RTI는 상호 연계 "
                      "지수입니다. 상대 지역도 교류가 늘어 함께 변합니다.</p>",
                      "<p><b>Which partners drive it.</b> 'Alone' is the effect on {name} of the flows with that "
                      "partner only (same estimate, {year}); 'share' its part of their sum (matched moves do not add "
                      "up across partners, so the sum may differ from the joint effect). Out/in: {flows} flows "
                      "(persons); RTI: reciprocal tie index. Partners change too.</p>"),
    "income_effect": ("<p>소득(1인당 근로소득)은 {year}년 {diff} [90% {lo}, {hi}]{zero}. 소득 자료가 {end}년에 "
                      "끝나므로 협력은 {start}년 이후 연도에만 반영됩니다.</p>",
                      "<p>Income (earned income per resident) in {year}: {diff} [90% {lo}, {hi}]{zero}. Income data "
                      "end in {end}, so cooperation changes only the years from {start}.</p>"),
    "income_zero": (" – 0을 포함하므로 뚜렷한 효과는 확인되지 않습니다", " – the interval includes zero: no detectable "
                    "effect"),
    "coop_method": ("<p class='note'>추정 방법: 이중 기계학습(DML) 국소 투영, 통제변수는 과거 성장·인구 구조·재정·"
                    "소득·순이동률·과거 교류 강도·연도. 검증(가상 실험): 참 효과 평균 {truth}에서 편향 {bias}%p, "
                    "90% 구간 포함률 {cov}(상대 지역 {covp}). 예측 모델 자체의 what-if는 평균 {whatif}로 효과를 크게 "
                    "줄여 보고하지 않습니다.</p>",
                    "<p class='note'>Estimator: double-ML local projections controlling for past growth, "
                    "demography, fiscal capacity, income, net migration rate, lagged tie strength and year. "
                    "Validation (semi-synthetic): mean true effect {truth}, bias {bias} pp, 90% coverage {cov} "
                    "(partners {covp}). The forecaster's own what-if averages {whatif}, shrinking the effect, and is "
                    "not reported.</p>"),
    "partner": ("상대 지역", "partner"),
    "out": ("전출", "out"),
    "in": ("전입", "in"),
    "alone": ("단독 효과", "alone"),
    "share": ("비중", "share"),
    "partner_change": ("상대 지역 자체 변화 [90%]", "partner's own change [90%]"),
    "extrap": ("외삽", "extrap."),
    "flows_of": ("{year}년 {kind}", "{kind} {year}"),
    # ---- 4. ties -------------------------------------------------------------------------------------------
    "h_ties": ("4. 가장 강한 상호 연계", "4. Strongest reciprocal ties"),
    "ties_text": ("<p>{year}년 {kind} 자료로 본 {name}의 상호 연계 상위 {n}곳입니다. 상호성은 두 방향 흐름이 얼마나 "
                  "균형을 이루는지(1 = 같음), 기대 흐름은 인구와 거리로 본 중력 모형 값, 강도는 log(실제/기대), "
                  "RTI(상호 연계 지수)는 상호성·기대 대비 강도·두 지역에서의 비중의 기하평균(0–1)입니다. ●는 협력 "
                  "시나리오의 상대 지역입니다.</p>",
                  "<p>{name}'s {n} strongest reciprocal ties in the {year} {kind} flows. Reciprocity: balance of the "
                  "two directions (1 = equal); expected: gravity model (population, distance); strength: log(observed "
                  "/ expected); RTI (reciprocal tie index): geometric mean of reciprocity, strength against the doubly "
                  "constrained model and materiality for both units (0–1). ● = partner in the scenario.</p>"),
    "ties_map_title": ("{name}: 가장 강한 상호 연계 ({year} {kind})", "{name}: strongest reciprocal ties ({year} "
                       "{kind})"),
    "ties_map_note": ("색: RTI(진할수록 강함)\n선 굵기: 양방향 이동량\n진한 남색: {name}",
                      "colour: RTI (darker = stronger)\nline width: two-way volume\nnavy: {name}"),
    "no_map": ("<p class='note'>지도 없음: 자료에 boundaries.geojson이 없습니다.</p>",
               "<p class='note'>No map: the dataset has no boundaries.geojson.</p>"),
    "reciprocity": ("상호성", "reciprocity"),
    "expected": ("기대 흐름", "expected"),
    "strength": ("강도", "strength"),
    "km": ("거리(km)", "km"),
    # ---- 5. caveats ----------------------------------------------------------------------------------------
    "h_caveats": ("5. 읽을 때 유의할 점", "5. Caveats"),
    "cav_data": ("<b>자료 시점과 공백.</b> {spans}년 자료입니다(각 전망은 그 대상의 마지막 자료 연도에서 출발: "
                 "{ends}). 도시 간 흐름 자료는 {flows}년만 있어, 그 이전 연도의 연계 지표는 패널의 "
                 "연도별 이동망 지표로 대신합니다. 이 시군구의 {origin}년 특성 {total}개 중 {missing}개가 비어 있습니다"
                 "({groups}{examples}). 빈 값은 모델이 결측으로 처리합니다.",
                 "<b>Data vintage and gaps.</b> Data: {spans} (each forecast starts from its target's last data year: "
                 "{ends}). Inter-city flows exist only for {flows}; earlier years' tie measures "
                 "come from the panel's yearly migration-network columns. {missing} of this unit's {total} features "
                 "in {origin} are missing ({groups}{examples}); the model treats them as missing."),
    "examples": ("; 예: {items}", "; e.g. {items}"),
    "cav_breaks_yes": ("<b>구조적 단절.</b> {years}년에 경계 변경(통합·코드 변경)이 있어, 그 해를 넘는 성장률은 "
                       "계산·학습하지 않습니다.{reviewed}",
                       "<b>Structural breaks.</b> Boundary changes (mergers, recodes) in {years}: growth across them "
                       "is never computed or learnt.{reviewed}"),
    "cav_breaks_no": ("<b>구조적 단절.</b> {first}년 이후 이 시군구에는 표시된 경계 변경이 없습니다.{reviewed}",
                      "<b>Structural breaks.</b> No boundary change is flagged for this unit since {first}.{reviewed}"),
    "cav_reviewed": (" 검토 후 실제 성장으로 둔 급변: {items}.", " Jumps reviewed and kept as real growth: {items}."),
    "cav_extrap": ("<b>외삽 표시.</b> 이 시군구의 특성 중 {n}개가 학습 자료의 1–99% 범위 밖입니다{items}; 그런 "
                   "값에서 모델은 가장 가까운 학습 사례처럼 반응합니다. {coop}",
                   "<b>Extrapolation.</b> {n} of this unit's features lie outside the 1–99% range of the training "
                   "data{items}; there the model behaves as for the nearest training cases. {coop}"),
    "cav_extrap_coop": ("협력 시나리오는 {units}의 교류 강도를 같은 규모 시군구에서 관찰된 범위 밖으로 "
                        "밀어내므로(외삽) "
                        "그 효과는 특히 조심해서 읽어야 합니다.",
                        "The scenario pushes the tie strength of {units} outside the range seen for units of its "
                        "size (extrapolation): read its effect with care."),
    "cav_extrap_ok": ("협력 시나리오의 교류 강도는 같은 규모 시군구에서 관찰된 범위 안에 있습니다.",
                      "The scenario keeps tie strength within the range seen for units of the same size."),
    "cav_shap": ("<b>SHAP은 인과가 아닙니다.</b> 2장의 기여도는 모델이 무엇에 반응했는지를 보여 줄 뿐이며, 그 요인을 "
                 "바꾸면 인구가 그만큼 바뀐다는 뜻이 아닙니다(요인끼리 얽혀 있고, 모델은 상관을 배웁니다).",
                 "<b>SHAP is not causal.</b> Page 2 shows what the model responds to; changing a driver would not "
                 "necessarily change the population by that amount (drivers are entangled; the model learns "
                 "associations)."),
    "cav_validation": ("<b>협력 효과는 어떻게 검증했나.</b> 실제 시군구의 규모·인접·연계 구조 위에 효과를 알고 있는 "
                       "가상 세계를 만들어(교란 요인 포함) 같은 추정을 돌렸습니다: 초점 시군구 {n}건에서 참 효과 평균 "
                       "{truth}, 추정 편향 {bias}%p(보수적), 오차(sqrt-PEHE) {pehe}%p = 효과 0이라고 할 때 오차의 "
                       "{vs_zero}(목표 25%{goal}), 90% 구간 포함률 {cov}, 상대 지역 {covp}. 실제 자료의 위약(placebo) "
                       "검사: {placebos}. 효과는 인구의 양방향 이동 교류에 대한 것이며(공동 서비스·통근은 자료에 없음) "
                       "실험이 아닌 보정된 연관입니다. 출처: {source}.",
                       "<b>How the effect was validated.</b> Semi-synthetic worlds built on the real units' sizes, "
                       "contiguity and tie structure with a known effect (and confounding): over {n} focal units the "
                       "mean true effect was {truth}, the estimate's bias {bias} pp (conservative), its error "
                       "(sqrt-PEHE) {pehe} pp = {vs_zero} of the zero-effect error (goal 25%{goal}), 90% coverage "
                       "{cov} (partners {covp}). Placebos on the real data: {placebos}. The effect is that of two-way "
                       "exchange of residents (joint services and commuting are not in the data), an adjusted "
                       "association, not an experiment. Source: {source}."),
    "goal_met": (": 충족", ": met"),
    "goal_not_met": (": 미달", ": not met"),
    "placebo": ("{name}: {mean} (se {se}), {rate} 기각 → {verdict}", "{name}: {mean} (se {se}), {rate} rejected → "
                "{verdict}"),
    "pass": ("통과", "pass"),
    "fail": ("실패", "FAIL"),
    "cav_intervals": ("<b>예측 구간.</b> 80%·90% 구간은 과거 여러 기준 연도의 실제 예측 오차로 보정한 구간(분할 "
                      "컨포멀)입니다.{chained}",
                      "<b>Prediction intervals.</b> The 80% and 90% intervals are calibrated on the forecast errors of "
                      "past origins (split conformal).{chained}"),
    "cav_chained": (" {first}년차 이후는 {direct}년 예측을 이어 붙인 값이라 구간이 넓습니다.",
                    " Years {first}–{last} chain {direct}-year forecasts, hence wider intervals."),
    "footer": ("<p class='note'>글꼴: {font}. 지도 경계: {boundaries}. 생성: tiecast {version}, 자료 지문 "
               "{fingerprint}.</p>",
               "<p class='note'>Font: {font}. Boundaries: {boundaries}. Made by tiecast {version}, data fingerprint "
               "{fingerprint}.</p>"),
    # ---- summary -------------------------------------------------------------------------------------------
    "s_title": ("전국 요약", "National summary"),
    "s_h1": ("전국 요약: 인구 전망과 대응 수준", "National summary: outlook and response levels"),
    "s_intro": ("<p>{dataset} 자료 {n}개 시군구의 {origin}년 기준 인구 전망({end}년까지)과, 지방 중소도시 {small}곳의 "
                "협력 시나리오(인구이동 상위 3개 상대 지역과의 흐름 2배, {start}년부터) 효과를 정리했습니다. 시군구 "
                "이름을 누르면 개별 보고서로 갑니다(같은 폴더).</p>",
                "<p>Population outlook from {origin} to {end} for the {n} units of {dataset}, and the effect of a "
                "cooperation scenario (flows with the three strongest partners x2 from {start}) for the {small} "
                "small/mid provincial cities. Unit names link to their reports (same folder).</p>"),
    "s_rule_h": ("대응 수준 규칙", "Response level rule"),
    "s_rule": ("<p>인구 전망 {origin}→{end}의 변화율과 그 구간으로, 위에서부터 처음 맞는 규칙을 적용합니다:</p>",
               "<p>From the population forecast change {origin}→{end} and its intervals; the first rule that holds "
               "applies:</p>"),
    "s_agree_h": ("인구감소지역 지정과의 비교", "Against the 2021 designation"),
    "s_agree": ("<p>뚜렷한 감소(1·2단계)와 지정 여부가 일치하는 곳: {agree}/{n}.</p>",
                "<p>Units where clear decline (levels 1–2) and designation agree: {agree}/{n}.</p>"),
    "s_not_seen": ("지정되었으나 감소가 뚜렷하지 않은 곳", "Designated, not forecast clearly declining"),
    "s_undesignated": ("감소가 뚜렷하나 지정되지 않은 곳", "Forecast clearly declining, not designated"),
    "s_decline_h": ("지방 중소도시: 전망 감소율 순위", "Small/mid cities by forecast decline"),
    "s_gain_h": ("지방 중소도시: 협력 기대 효과 순위", "Small/mid cities by expected gain"),
    "s_gain_note": ("<p class='note'>효과: {method} 추정, 기준 전망 대비 %, 90% 구간. * = 외삽.</p>",
                    "<p class='note'>Effect: {method} estimate, % of the baseline, 90% interval. * = "
                    "extrapolation.</p>"),
    "s_maps_h": ("지도", "Maps"),
    "s_choropleth": ("인구 전망 변화 {origin}→{end} (%)", "forecast population change {origin}→{end} (%)"),
    "s_outline": ("<p class='note'>굵은 테두리: 인구감소지역(2021 지정).</p>",
                  "<p class='note'>Dark outline: designated population-decline areas (2021).</p>"),
    "s_ties": ("가장 강한 상호 연계 {n}쌍 ({year})", "strongest {n} reciprocal ties ({year})"),
    "s_shap_h": ("모델이 전국적으로 반응하는 요인(SHAP)", "What the model responds to (SHAP)"),
    "s_shap_title": ("SHAP 요약: {label} {h}년 성장률", "SHAP summary: {label} {h}-year growth"),
    "s_groups": ("요인 묶음별 평균 |기여도|", "mean |contribution| by feature group"),
    "s_all": ("전체", "all units"),
    "s_small": ("지방 중소도시", "small/mid cities"),
    "s_shap_note": ("<p class='note'>점 하나가 시군구 하나, 색은 그 특성 값의 순위(빨강 = 높음). SHAP은 모델을 "
                    "설명할 뿐 인과가 아닙니다. {font}</p>",
                    "<p class='note'>One dot per unit, coloured by the feature's value rank (red = high). SHAP "
                    "explains the model, not causes. {font}</p>"),
    "rank": ("순위", "rank"),
    "unit": ("시군구", "unit"),
    "level": ("대응 수준", "level"),
    "designated_col": ("인구감소지역", "designated"),
    "not_designated": ("비지정", "not designated"),
    "total": ("계", "total"),
    "partners": ("상대 지역", "partners"),
    "low": ("낮음", "low"),
    "high": ("높음", "high"),
}


def w(key: str, lang: str, **values: Any) -> str:
    """The ``lang`` text of ``key`` with ``values`` filled in."""
    text = WORDS[key][0 if lang == "ko" else 1]
    return text.format(**values) if values else text
