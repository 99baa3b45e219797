"""BigQuery jobs outlive their workers: labels, ids, orphans cancelled and awaited; least privilege.

Against a stand-in for the calls bqemulator cannot play (bigquery_standin.py), and bqemulator for
what it runs: the MERGE's own job id and labels.
"""

from __future__ import annotations

import datetime as dt

import pytest
from google.api_core.exceptions import Forbidden

from optimizely_assets.warehouse import bigquery_jobs as jobs
from optimizely_assets.warehouse.bigquery import BigQueryWarehouse
from optimizely_assets_tests.bigquery_standin import BigQueryStandin, StandinJob

TABLE = "optimizely_e3.decisions"


@pytest.fixture
def standin():
    server = BigQueryStandin()
    url = server.start()
    yield server, url
    server.stop()


def test_orphans_on_the_table_are_cancelled_and_awaited_until_done_others_are_left(standin):
    server, url = standin
    server.jobs["orphan"] = StandinJob("orphan", jobs.labels(TABLE, dt.date(2024, 1, 1)), polls_until_done=3)
    server.jobs["other"] = StandinJob("other", jobs.labels("optimizely_e3.events"))
    server.jobs["unlabelled"] = StandinJob("unlabelled", {})
    assert jobs.settle_orphans(server.client(url), TABLE, poll=0.01) == ["orphan"]
    cancels = [p for m, p in server.calls if m == "POST" and p.endswith("/cancel")]
    assert cancels == ["/bigquery/v2/projects/test-project/jobs/orphan/cancel"]
    # It returned only once BigQuery said DONE: cancellation is a request, not an end.
    assert server.jobs["orphan"].state == "DONE" and server.jobs["orphan"].gets_after_cancel == 4
    assert server.jobs["other"].state == "RUNNING" and not server.jobs["other"].cancelled


def test_an_orphan_that_does_not_end_stops_the_step_and_is_named(standin):
    server, url = standin
    server.jobs["stuck"] = StandinJob("stuck", jobs.labels(TABLE), polls_until_done=10**9)
    with pytest.raises(TimeoutError, match=r"optimizely_e3\.decisions still running .*stuck"):
        jobs.settle_orphans(server.client(url), TABLE, timeout=0.05, poll=0.01)


def test_a_wait_interrupted_cancels_the_job_it_started(standin):
    server, url = standin
    server.jobs["mine"] = StandinJob("mine", jobs.labels(TABLE))
    client = server.client(url)
    job = client.get_job("mine", location="US")
    with pytest.raises(KeyboardInterrupt), jobs.cancelled_if_interrupted(client, job):
        raise KeyboardInterrupt  # what a terminated run raises in the step
    assert server.jobs["mine"].cancelled


def test_a_data_editor_on_an_existing_dataset_needs_no_create_permission(standin):
    server, url = standin
    server.datasets.add("optimizely_e3")
    wh = BigQueryWarehouse(project="test-project", dataset="optimizely_e3", api_endpoint=url)
    wh.ensure_dataset()  # get, 200: no create call at all
    assert ("POST", "/bigquery/v2/projects/test-project/datasets") not in server.calls
    # create_dataset(exists_ok=True), as before: BigQuery checks the permission first (403).
    with pytest.raises(Forbidden, match="bigquery.datasets.create"):
        wh.client.create_dataset("test-project.optimizely_e3", exists_ok=True)
    # A missing dataset is created, and without the permission the error says which one it lacks.
    missing = BigQueryWarehouse(project="test-project", dataset="absent", api_endpoint=url)
    with pytest.raises(Forbidden, match="bigquery.datasets.create"):
        missing.ensure_dataset()


def test_labels_and_ids_follow_bigquerys_rules():
    step = jobs.StepRef("0b1c-Run", "decisions__canonical", attempt=2)
    got = jobs.labels("My-Dataset.Decisions", dt.date(2024, 1, 31), step)
    assert got == {
        "optimizely_assets": "true",
        "optimizely_table": "my-dataset_decisions",
        "optimizely_day": "20240131",
        "optimizely_run": "0b1c-run",
        "optimizely_step": "decisions__canonical",
    }
    assert all(len(v) <= 63 for v in jobs.labels("x" * 100).values())
    assert step.job_id("decisions_1") == "optimizely_decisions__canonical_decisions_1_0b1c-Run_2"
    assert step.job_id("decisions_1") != jobs.StepRef("0b1c-Run", "decisions__canonical", 3).job_id(
        "decisions_1"
    )
