"""Experiment units, attributed events and results: hand-computed cases on both backends."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import astuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from dagster import DagsterInstance

from optimizely_assets.analysis.srm import chi_square_sf, srm_test
from optimizely_assets.demo.experiments import EFFECT_EXPERIMENT, SRM_EXPERIMENT
from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.resources.experiment_catalog import RestExperimentCatalog
from optimizely_assets.warehouse.analysis import ExperimentAnalysis
from optimizely_assets.warehouse.analysis_sql import Window
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets_tests.helpers import local_settings, run_day

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
E1, E2 = "1001", "2002"
# (uuid, timestamp, visitor, experiment, variation, is_holdback, export day)
DECISIONS = [
    ("u-b", "2024-01-01 10:00:00", "alice", E1, "A", False, D1),  # tie on timestamp with u-a ...
    ("u-a", "2024-01-01 10:00:00", "alice", E1, "B", False, D1),  # ... u-a wins: alice is in B
    ("u-c", "2024-01-01 12:00:00", "bob", E1, "A", False, D1),
    ("u-d", "2024-01-01 09:00:00", "bob", E1, "B", False, D2),  # delivered later, earlier clock: bob's unit
    ("u-e", "2024-01-01 11:00:00", "alice", E2, "X", False, D1),  # alice is in two experiments
    ("u-f", "2024-01-02 15:00:00", "carol", E1, "A", False, D2),  # exposed after her conversion
    ("u-g", "2024-01-01 08:00:00", "dave", E1, "A", True, D1),  # holdback: not in results
]
# (uuid, timestamp, visitor, event_name, revenue, export day)
EVENTS = [
    ("v-1", "2024-01-03 10:00:00", "alice", "purchase", 500, D3),  # exactly exposure + 48 h in E1
    ("v-2", "2024-01-03 10:00:00.001", "alice", "purchase", 700, D3),  # 1 ms past E1's edge; in E2's
    ("v-3", "2024-01-01 13:00:00", "bob", "add_to_cart", None, D1),
    ("v-4", "2024-01-02 14:00:00", "carol", "purchase", 900, D2),  # before her exposure
    ("v-5", "2024-01-01 09:00:00", "dave", "purchase", 300, D1),  # holdback unit
]
EXPECTED = {  # (experiment, variation, event) -> (units, converting units, events, revenue)
    (E1, "A", "add_to_cart"): (1, 0, 0, 0),
    (E1, "A", "purchase"): (1, 0, 0, 0),
    (E1, "B", "add_to_cart"): (2, 1, 1, 0),
    (E1, "B", "purchase"): (2, 1, 1, 500),
    (E2, "X", "purchase"): (1, 1, 2, 1200),
}
W48 = Window(48)


def _lit(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return f"DATE '{value}'"
    return f"'{value}'"


def seed(analysis: ExperimentAnalysis) -> None:
    for export_type in ExportType:
        analysis.warehouse.ensure_tables(export_type)
    analysis.ensure_tables()
    rows = ", ".join(
        f"({_lit(u)}, TIMESTAMP '{ts}+00', {_lit(v)}, {_lit(e)}, {_lit(var)}, {_lit(h)}, {_lit(d)})"
        for u, ts, v, e, var, h, d in DECISIONS
    )
    analysis.execute(
        [
            f"INSERT INTO {analysis.names['decisions']} (uuid, timestamp, visitor_id, experiment_id, variation_id, "
            f"is_holdback, export_date) VALUES {rows}"
        ]
    )
    rows = ", ".join(
        f"({_lit(u)}, TIMESTAMP '{ts}+00', {_lit(v)}, {_lit(n)}, {_lit(r)}, {_lit(d)})"
        for u, ts, v, n, r, d in EVENTS
    )
    analysis.execute(
        [
            f"INSERT INTO {analysis.names['events']} (uuid, timestamp, visitor_id, event_name, revenue, export_date) "
            f"VALUES {rows}"
        ]
    )


def run_days(analysis: ExperimentAnalysis, window: Window = W48) -> dict:
    # As automation leaves it: every units day folded in, then every events day attributed.
    for day in (D1, D2, D3):
        analysis.write_units(day, window)
    for day in (D1, D2, D3):
        analysis.write_events(day, window)
    analysis.rebuild_results()
    return {
        (r.experiment_id, r.variation_id, r.event_name): (r.units, r.converting_units, r.events, r.revenue)
        for r in analysis.results()
    }


@pytest.fixture
def duck(tmp_path) -> ExperimentAnalysis:
    analysis = ExperimentAnalysis(DuckDBWarehouse(path=str(tmp_path / "w.duckdb")))
    seed(analysis)
    return analysis


def test_units_events_and_results_follow_the_definitions(duck):
    assert run_days(duck) == EXPECTED
    units = duck.query(
        "SELECT experiment_id, visitor_id, variation_id, decision_uuid, export_date, multiple_variations "
        "FROM experiment_units ORDER BY 1, 2"
    )
    assert units == [
        (E1, "alice", "B", "u-a", D1, True),  # u-b (A) at the same instant
        (E1, "bob", "B", "u-d", D2, True),  # the first by timestamp, though delivered a day later
        (E1, "carol", "A", "u-f", D2, False),
        (E1, "dave", "A", "u-g", D1, False),
        (E2, "alice", "X", "u-e", D1, False),
    ]
    attributed = duck.query("SELECT event_uuid, experiment_id FROM experiment_events ORDER BY 1, 2")
    assert attributed == [("v-1", E1), ("v-1", E2), ("v-2", E2), ("v-3", E1)]


def test_reruns_change_nothing(duck):
    before = run_days(duck)
    assert duck.write_units(D1, W48) == {"inserted": 0, "moved_earlier": 0, "retracted": 0}
    assert duck.write_units(D2, W48) == {"inserted": 0, "moved_earlier": 0, "retracted": 0}
    assert duck.write_events(D3, W48) == 3  # replaced, not appended
    assert run_days(duck) == before


def test_a_unit_moves_to_an_earlier_decision_delivered_later_and_its_stale_events_go(duck):
    duck.write_units(D1, W48)
    duck.write_events(D1, W48)
    # Loaded alone, D1 makes bob a unit of A at 12:00, with his 13:00 add_to_cart.
    assert duck.query("SELECT variation_id FROM experiment_events WHERE visitor_id = 'bob'") == [("A",)]
    assert duck.write_units(D2, W48) == {
        "inserted": 1,
        "moved_earlier": 1,
        "retracted": 0,
    }  # carol new; bob moved
    # bob's event went with his old unit; D1's events re-attributed give it to the new one.
    assert duck.query("SELECT COUNT(*) FROM experiment_events WHERE visitor_id = 'bob'") == [(0,)]
    duck.write_events(D1, W48)
    assert duck.query("SELECT variation_id FROM experiment_events WHERE visitor_id = 'bob'") == [("B",)]


def redeliver_without_bobs_decision(analysis: ExperimentAnalysis) -> list[tuple]:
    """D2 re-delivered without u-d, bob's unit: his unit goes back to u-c (A, D1), his events go."""
    run_days(analysis)
    analysis.execute(
        ["DELETE FROM decisions WHERE uuid = 'u-d'".replace("decisions", analysis.names["decisions"])]
    )
    assert analysis.write_units(D2, W48) == {"inserted": 0, "moved_earlier": 0, "retracted": 1}
    assert analysis.query(
        f"SELECT COUNT(*) FROM {analysis.names['experiment_events']} WHERE visitor_id = 'bob'"
    ) == [(0,)]
    return analysis.query(
        f"SELECT variation_id, decision_uuid, export_date FROM {analysis.names['experiment_units']} "
        "WHERE visitor_id = 'bob'"
    )


def test_a_redelivered_day_without_a_units_decision_derives_the_unit_again(duck):
    assert redeliver_without_bobs_decision(duck) == [("A", "u-c", D1)]
    duck.write_events(D1, W48)  # as automation would: bob's add_to_cart is his again, in A
    assert duck.query("SELECT variation_id FROM experiment_events WHERE visitor_id = 'bob'") == [("A",)]
    # A pair left with no decision at all has no unit.
    duck.execute(["DELETE FROM decisions WHERE uuid = 'u-c'"])
    assert duck.write_units(D1, W48)["retracted"] == 1
    assert duck.query("SELECT COUNT(*) FROM experiment_units WHERE visitor_id = 'bob'") == [(0,)]


# (experiment, variation, event, metric) -> (n, Σy, Σy², Σx, Σx², Σxy); x: the 7 days before exposure.
# carol's purchase (v-4, 900) came an hour before her exposure in A: her pre-period, not her result.
EXPECTED_SUMS = {
    (E1, "A", "add_to_cart", "conversion"): (1, 0, 0, 0, 0, 0),
    (E1, "A", "purchase", "conversion"): (1, 0, 0, 1, 1, 0),
    (E1, "A", "purchase", "count"): (1, 0, 0, 1, 1, 0),
    (E1, "A", "purchase", "revenue"): (1, 0, 0, 900, 810_000, 0),
    (E1, "B", "add_to_cart", "conversion"): (2, 1, 1, 0, 0, 0),
    (E1, "B", "add_to_cart", "count"): (2, 1, 1, 0, 0, 0),
    (E1, "B", "purchase", "revenue"): (2, 500, 250_000, 0, 0, 0),
    (E2, "X", "purchase", "count"): (1, 2, 4, 0, 0, 0),
    (E2, "X", "purchase", "revenue"): (1, 1200, 1_440_000, 0, 0, 0),
}


def metric_sums_of(analysis: ExperimentAnalysis) -> dict:
    run_days(analysis)
    got = {}
    for m in analysis.metric_sums():
        s = m.sums
        got[(m.experiment_id, m.variation_id, m.event_name, m.metric)] = (
            s.n,
            s.sum,
            s.sum_squares,
            s.pre_sum,
            s.pre_sum_squares,
            s.sum_products,
        )
    return got


def test_metric_sums_are_the_definitions_by_hand(duck):
    got = metric_sums_of(duck)
    assert len(got) == 3 * 5  # 5 (experiment, variation, event) rows x 3 metrics; dave's holdback is out
    assert {k: got[k] for k in EXPECTED_SUMS} == EXPECTED_SUMS


def daily_sums_add_up_and_tables_round_trip(analysis: ExperimentAnalysis) -> None:
    """The report's per-exposure-day sums add up to the totals; baselines and metric rows come back
    from the warehouse as written (both backends)."""
    from optimizely_assets.analysis.metrics import experiment_metrics
    from optimizely_assets.warehouse.analysis import ExperimentRow

    totals = {
        (m.experiment_id, m.variation_id, m.event_name, m.metric): m.sums for m in analysis.metric_sums()
    }
    added: dict = {}
    daily = analysis.daily_metric_sums(E1)
    assert sorted(daily) == list(daily) and set(daily) <= {D1, D2}
    for sums in daily.values():
        for m in sums:
            key = (m.experiment_id, m.variation_id, m.event_name, m.metric)
            added[key] = [a + b for a, b in zip(added.get(key, [0] * 6), astuple(m.sums), strict=True)]
    assert added == {k: list(astuple(v)) for k, v in totals.items() if k[0] == E1}
    analysis.replace_experiments(
        [ExperimentRow(E1, "n", v, None, None, "ids", v == "B") for v in ("A", "B")]
        + [ExperimentRow(E2, None, "X", None, None, "ids")]
    )
    assert analysis.baselines() == {E1: "B"}
    rows = experiment_metrics(analysis.metric_sums(), analysis.baselines())
    analysis.replace_metrics(rows)
    mine = [r for r in rows if r.experiment_id == E1]
    key = lambda r: (r.event_name, r.metric, r.variation_id)  # noqa: E731
    assert sorted(analysis.metrics(E1), key=key) == sorted(mine, key=key)
    assert {r.baseline_variation_id for r in mine} == {"B"}


def test_daily_sums_add_up_and_tables_round_trip(duck):
    run_days(duck)
    daily_sums_add_up_and_tables_round_trip(duck)


def test_a_decision_redelivered_with_another_variation_or_a_later_time_moves_its_unit(duck):
    """Same uuid, other content: the unit must follow the decision as canonical now holds it, not
    keep the old copy (a fold that only looks at uuids would leave bob in B, silently)."""
    run_days(duck)
    duck.execute(["UPDATE decisions SET variation_id = 'A' WHERE uuid = 'u-d'"])
    assert duck.write_units(D2, W48) == {"inserted": 0, "moved_earlier": 0, "retracted": 1}
    bob = "SELECT variation_id, decision_uuid FROM experiment_units WHERE visitor_id = 'bob'"
    assert duck.query(bob) == [("A", "u-d")]
    # Re-delivered 4 hours later, u-d is no longer bob's first decision: u-c (12:00, A) is.
    duck.execute(["UPDATE decisions SET timestamp = TIMESTAMP '2024-01-01 13:00:00+00' WHERE uuid = 'u-d'"])
    assert duck.write_units(D2, W48)["retracted"] == 1
    assert duck.query(bob) == [("A", "u-c")]


def test_a_shorter_window_attributes_less(duck):
    run_days(duck, Window(24))
    got = {(r.experiment_id, r.variation_id, r.event_name): r.events for r in duck.results()}
    # E2 keeps its units with no event attributed: one row without an event name.
    assert got == {(E1, "A", "add_to_cart"): 0, (E1, "B", "add_to_cart"): 1, (E2, "X", None): 0}


def test_the_unit_checks_catch_a_changed_variation_a_second_unit_and_a_later_unit(duck):
    run_days(duck)
    assert duck.units_not_in_decisions(D1, W48) == {} and duck.units_not_in_decisions(D2, W48) == {}
    assert duck.visitors_vs_units(D1, W48)[E1] == (3, 3, 0)
    duck.execute(["UPDATE experiment_units SET variation_id = 'Z' WHERE visitor_id = 'bob'"])
    assert duck.units_not_in_decisions(D2, W48) == {E1: 1}  # bob's unit is a decision of D2
    duck.execute(
        [
            "INSERT INTO experiment_units SELECT * FROM experiment_units WHERE visitor_id = 'alice' "
            f"AND experiment_id = '{E1}'"
        ]
    )
    assert duck.visitors_vs_units(D1, W48)[E1] == (3, 4, 0)
    # A unit kept at a later decision than one the day holds (an insert-only fold would do it).
    duck.execute(
        [
            "UPDATE experiment_units SET exposure_timestamp = exposure_timestamp + INTERVAL 5 HOUR "
            "WHERE visitor_id = 'dave'"
        ]
    )
    assert duck.visitors_vs_units(D1, W48)[E1] == (3, 4, 1)


def test_bigquery_runs_the_same_semantics(tmp_path):
    from optimizely_assets_tests.servers import start_bigquery_emulator
    from optimizely_assets_tests.test_bigquery_emulator import EmulatorWarehouse

    gcs = tmp_path / "gcs"
    gcs.mkdir()
    url, proc = start_bigquery_emulator(tmp_path, gcs)
    try:
        bq = ExperimentAnalysis(
            EmulatorWarehouse(project="test-project", dataset="analysis", api_endpoint=url)
        )
        seed(bq)
        assert run_days(bq) == EXPECTED
        assert bq.write_units(D1, W48) == {"inserted": 0, "moved_earlier": 0, "retracted": 0}
        assert bq.units_not_in_decisions(D1, W48) == {}
        assert bq.visitors_vs_units(D1, W48)[E1] == (3, 3, 0)
        assert {k: v for k, v in metric_sums_of(bq).items() if k in EXPECTED_SUMS} == EXPECTED_SUMS
        daily_sums_add_up_and_tables_round_trip(bq)
        assert [tuple(r) for r in redeliver_without_bobs_decision(bq)] == [("A", "u-c", D1)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chi_square_matches_known_quantiles_and_srm_uses_the_allocation():
    assert chi_square_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_sf(13.815510557964274, 2) == pytest.approx(0.001, rel=1e-9)
    assert chi_square_sf(0.5, 3) == pytest.approx(0.918891411654676, rel=1e-9)
    assert not srm_test("e", {"a": 5_050, "b": 4_950}).mismatch
    assert srm_test("e", {"a": 5_300, "b": 4_700}).mismatch
    # 90/10 allocated and observed: no mismatch; an equal split would call it one.
    assert not srm_test("e", {"a": 9_000, "b": 1_000}, {"a": 9_000, "b": 1_000}).mismatch
    assert srm_test("e", {"a": 9_000, "b": 1_000}).mismatch


def test_srm_cases_against_scipy():
    from scipy.stats import chisquare

    # A variation the allocation names but no unit reached takes part with 0.
    t = srm_test("e", {"a": 1_000, "b": 1_000}, {"a": 3333, "b": 3333, "c": 3334})
    want = chisquare([1_000, 1_000, 0], [2_000 * w / 10_000 for w in (3333, 3333, 3334)])
    assert t.units == {"a": 1_000, "b": 1_000, "c": 0}
    assert t.statistic == pytest.approx(want.statistic) and t.p_value == pytest.approx(want.pvalue, rel=1e-6)
    assert t.mismatch and want.pvalue < 1e-200
    # Weight 0: the other weights keep their shares; its units are a mismatch by themselves.
    t = srm_test("e", {"a": 9_000, "b": 1_000, "c": 3}, {"a": 9_000, "b": 1_000, "c": 0})
    want = chisquare([9_000, 1_000], [9_000, 1_000])
    assert t.p_value == pytest.approx(want.pvalue) and t.statistic == pytest.approx(want.statistic)
    assert t.unallocated == {"c": 3} and t.mismatch and "3 unit(s) in unallocated" in t.verdict()
    assert not srm_test("e", {"a": 9_000, "b": 1_000}, {"a": 9_000, "b": 1_000, "c": 0}).mismatch
    # A NULL variation: no crash, its units are unallocated; the others are tested as allocated.
    t = srm_test("e", {"a": 5_100, "b": 4_900, None: 7}, {"a": 1, "b": 1})
    want = chisquare([5_100, 4_900])
    assert t.p_value == pytest.approx(want.pvalue) and t.unallocated == {"(none)": 7} and t.mismatch
    # Equal split without an allocation, NULL left out of the split.
    t = srm_test("e", {"a": 5_300, "b": 4_700, None: 1})
    assert t.p_value == pytest.approx(chisquare([5_300, 4_700]).pvalue) and t.allocation == "equal"


def test_the_daily_job_warns_of_the_srm_experiment_and_shows_the_effect(tmp_path):
    settings = local_settings(tmp_path / "local")
    # Enough conversions for the effect to clear FDR over 7 events x 3 metrics on one day: the
    # generator concentrates events on active visitors, as real traffic does.
    spec = ExportSpec(decisions_per_day=12_000, events_per_day=12_000, experiments=4)
    write_export(settings.local_source_dir, [D1], spec)
    result = run_day(settings, D1, DagsterInstance.ephemeral())
    assert result.success
    srm = next(e for e in result.get_asset_check_evaluations() if e.check_name == "sample_ratio_mismatch")
    assert not srm.passed and srm.severity.value == "WARN"
    assert srm.metadata["mismatched"].value == [SRM_EXPERIMENT]
    assert f"Pricing page layout ({SRM_EXPERIMENT}" in srm.description
    units_checks = [
        e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "experiment_units"
    ]
    assert {e.check_name for e in units_checks} == {
        "unit_variation_in_decisions",
        "units_match_distinct_visitors",
        "decisions_within_lateness_bound",
    }
    assert all(e.passed for e in units_checks)
    analysis = ExperimentAnalysis(DuckDBWarehouse(path=str(settings.duckdb_path)))
    purchase = {
        r.variation_name: r.conversion_rate
        for r in analysis.results(EFFECT_EXPERIMENT)
        if r.event_name == "purchase"
    }
    assert purchase["treatment"] > purchase["control"] * 1.3
    made = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("experiment_results_and_metrics")
    }
    assert "| Checkout button colour | treatment |" in made["experiment_results"]["results"].value
    # experiment_metrics: the effect is significant after FDR, its interval excludes 0; the results'
    # metadata carries the same inference table.
    assert made["experiment_metrics"]["dagster/row_count"].value > 0
    assert made["experiment_results"]["metrics"].value == made["experiment_metrics"]["metrics"].value
    assert f"| {EFFECT_EXPERIMENT} |" in made["experiment_results"]["metrics"].value
    ((lift, lo, hi, fdr, seq, note),) = analysis.query(
        "SELECT m.lift, m.ci_low, m.ci_high, m.fdr_p_value, m.seq_p_value, m.note FROM experiment_metrics AS m "
        "JOIN experiments AS x ON x.experiment_id = m.experiment_id AND x.variation_id = m.variation_id "
        f"WHERE m.experiment_id = '{EFFECT_EXPERIMENT}' AND m.event_name = 'purchase' "
        "AND m.metric = 'conversion' AND x.variation_name = 'treatment'"
    )
    assert note is None and lift > 0.3 and 0 < lo < lift < hi and fdr < 0.05 and seq <= 1


class _FakeRestAPI(BaseHTTPRequestHandler):
    """Optimizely REST v2 `GET /v2/experiments/{id}`: the documented fields the catalog reads."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("Authorization") != "Bearer good-token":
            return self._send(401, {"code": "UNAUTHORIZED", "message": "Authentication failed"})
        if self.path == f"/v2/experiments/{E1}":
            return self._send(
                200,
                {
                    "id": int(E1),
                    "key": "checkout_button",
                    "name": None,
                    "status": "running",
                    "variations": [
                        {"variation_id": 11, "key": "control", "name": None, "weight": 9000},
                        {"variation_id": 12, "key": "treatment", "name": None, "weight": 1000},
                        {"variation_id": 10, "key": "retired", "name": None, "weight": 0},
                    ],
                },
            )
        self._send(404, {"code": "NOT_FOUND", "message": "Not found"})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_names_and_weights_come_from_the_rest_api_and_fall_back_to_ids():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeRestAPI)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v2"
    try:
        rows, errors = RestExperimentCatalog(personal_access_token="good-token\n", api_url=url).lookup(
            {E1: ["11", "12"], E2: ["21"]}
        )
        assert errors == []  # a 404 is an id without a name, not an error
        by = {(r.experiment_id, r.variation_id): r for r in rows}
        assert (
            by[(E1, "11")].experiment_name == "checkout_button" and by[(E1, "11")].variation_name == "control"
        )
        assert by[(E1, "12")].weight == 1000 and by[(E1, "12")].source == "api"
        assert by[(E2, "21")].experiment_name is None and by[(E2, "21")].source == "ids"
        # The baseline by default: the first variation the API lists, not the smallest id.
        assert [v for (e, v), r in by.items() if e == E1 and r.is_baseline] == ["11"]
        # A rejected token falls back to ids and says why, without the token.
        rows, errors = RestExperimentCatalog(personal_access_token="bad-secret-token", api_url=url).lookup(
            {E1: ["11"]}
        )
        assert [(r.experiment_id, r.source) for r in rows] == [(E1, "ids")]
        assert "401" in errors[0] and "bad-secret-token" not in errors[0]
    finally:
        server.shutdown()
