"""Every query the BigQuery path sends, rendered and held to BigQuery's documented rules.

bqemulator accepts scripts BigQuery rejects (a DECLARE after CREATE TEMP FUNCTION) and says
nothing about cost, so these rules are checked on the text itself (docs/bigquery.md):
- scripting: DECLAREs only at the start of a script;
- one statement per DML job, so its row count is the job's ``num_dml_affected_rows``;
- no query parameters left untyped (none are used: dates are inlined literals);
- partitioned tables are filtered on their partitioning column with constant DATE literals
  (documented pruning), never through script variables (undocumented);
- every query job carries ``maximum_bytes_billed``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.bigquery import BigQueryWarehouse

DAY = dt.date(2024, 3, 1)
DATE_LITERAL = r"DATE '\d{4}-\d{2}-\d{2}'"


def statements(sql: str) -> list[str]:
    """Split on `;` outside quotes, backticks and comments."""
    out, cur, quote, i = [], [], None, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and quote != "`":
                cur.append(sql[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            cur.append(ch)
        elif sql.startswith("--", i):
            i = sql.find("\n", i) if "\n" in sql[i:] else len(sql)
            continue
        elif ch == ";":
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur).strip())
    return [s for s in out if s]


def violations(sql: str, dml: bool) -> list[str]:
    found = []
    stmts = statements(sql)
    seen_other = False
    for s in stmts:
        if re.match(r"(?i)DECLARE\b", s):
            if seen_other:
                found.append("a DECLARE after another statement (BigQuery: declarations come first)")
        else:
            seen_other = True
    if dml and (len(stmts) != 1 or not re.match(r"(?i)(MERGE|INSERT|DELETE|UPDATE)\b", stmts[0])):
        found.append(f"a DML job of {len(stmts)} statements; one DML statement per job")
    if re.search(r"@\w+", re.sub(r"'[^']*'", "''", sql)):
        found.append("query parameters: every one needs an explicit type; this project inlines literals")
    for m in re.finditer(r"(?i)\b(_PARTITIONDATE|_PARTITIONTIME|export_date)\s*(=|BETWEEN)\s*", sql):
        rest = sql[m.end() :]
        if not re.match(DATE_LITERAL, rest):
            found.append(
                f"{m.group(0).strip()} compared with a non-literal ({rest[:20]!r}): no documented pruning"
            )
    return found


def planned(export_type: ExportType) -> list:
    warehouse = BigQueryWarehouse(project="my-project", dataset="optimizely_e3")
    return warehouse.day_queries(export_type, DAY, 30)


@pytest.mark.parametrize("export_type", list(ExportType))
def test_every_generated_query_follows_bigquerys_rules(export_type):
    queries = planned(export_type)
    assert {q.name for q in queries} >= {
        "merge_canonical",
        "day_stats",
        "canonical_findings",
        "not_in_raw",
    }
    for q in queries:
        assert violations(q.sql, q.dml) == [], (q.name, q.sql)


@pytest.mark.parametrize("export_type", list(ExportType))
def test_every_query_reading_a_table_filters_its_partitions(export_type):
    for q in planned(export_type):
        raw_reads = q.sql.count("_raw`")
        canonical_reads = len(re.findall(rf"\.{export_type.value}`", q.sql))
        assert q.sql.count("_PARTITIONDATE = DATE '") >= raw_reads, q.name
        filters = len(re.findall(rf"export_date (=|BETWEEN) {DATE_LITERAL}", q.sql))
        assert filters >= canonical_reads, q.name


def test_the_merge_window_is_the_horizon_around_the_export_day():
    merge = next(q for q in planned(ExportType.DECISIONS) if q.name == "merge_canonical").sql
    assert "T.export_date BETWEEN DATE '2024-01-31' AND DATE '2024-03-31'" in merge
    on_clause = merge.split("ON T.uuid_key")[1].split("WHEN")[0]
    assert "timestamp" not in on_clause  # the window never comes from client clocks
    # Only the day itself is rewritten or deleted: every other day of the window is only read.
    assert "WHEN MATCHED AND T.export_date = DATE '2024-03-01' THEN\n  UPDATE SET" in merge
    assert merge.endswith("WHEN NOT MATCHED BY SOURCE AND T.export_date = DATE '2024-03-01' THEN\n  DELETE")


def test_every_query_job_carries_a_cost_guard():
    warehouse = BigQueryWarehouse(project="p", maximum_bytes_billed=5 * 10**9)
    assert warehouse.query_config().maximum_bytes_billed == 5 * 10**9
    assert BigQueryWarehouse(project="p").query_config().maximum_bytes_billed == 1 << 40
    assert (
        BigQueryWarehouse(project="p", maximum_bytes_billed=None).query_config().maximum_bytes_billed is None
    )


# The MERGE script this project sent before: BigQuery rejects it, the emulator ran it.
PREVIOUS_SCRIPT = """
CREATE TEMP FUNCTION url_decode(s STRING) RETURNS STRING LANGUAGE js AS
  "if (s === null) return null; try { return decodeURIComponent(s); } catch (e) { return s; }";
DECLARE lo DATE DEFAULT (SELECT DATE_SUB(MIN(DATE(`timestamp`)), INTERVAL 1 DAY) FROM `p.d.decisions_raw` WHERE `date` = DATE '2024-01-01');
DECLARE hi DATE DEFAULT (SELECT MAX(DATE(`timestamp`)) FROM `p.d.decisions_raw` WHERE `date` = DATE '2024-01-01');
MERGE `p.d.decisions` AS T USING (SELECT * FROM `p.d.decisions_raw`) AS S
ON T.uuid = S.uuid AND T.event_date BETWEEN lo AND hi
WHEN NOT MATCHED THEN INSERT ROW;
"""


def test_the_rules_catch_the_previous_script():
    found = violations(PREVIOUS_SCRIPT.replace("event_date", "export_date"), dml=True)
    assert any("DECLARE after" in v for v in found)
    assert any("DML job of 4 statements" in v for v in found)
    assert any("non-literal" in v for v in found)


@pytest.mark.parametrize("export_type", list(ExportType))
def test_the_dedup_window_is_read_as_keys_only(export_type):
    """BigQuery bills every referenced column over every scanned partition: over the window's 61
    export days the MERGE and the checks reference canonical's uuid_key (19 bytes a row) and
    export_date (8), never its uuid (38). Parsed from the statements (bench/bigquery_bytes.py)."""
    from bench.bigquery_bytes import scans

    window_reads = {}
    for q in planned(export_type):
        cols, parts = scans(q.sql, 30).get("canonical", (set(), set()))
        assert parts is not None, f"{q.name} reads canonical without a partition filter"
        if len(parts) > 1:
            window_reads[q.name] = cols
    assert window_reads == {
        "merge_canonical": {"uuid_key", "export_date"},
        "canonical_findings": {"uuid_key", "export_date"},
    }
    # The same parse sees the previous MERGE's probe on the uuid text.
    merge = next(q.sql for q in planned(export_type) if q.name == "merge_canonical")
    previous = merge.replace("ON T.uuid_key = S.uuid_key", "ON T.uuid = S.uuid")
    assert scans(previous, 30)["canonical"][0] == {"uuid", "export_date"}
