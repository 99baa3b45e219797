"""BigQuery bytes a day's MERGE and canonical checks bill at a full window: this release's statements
beside the previous release's (before ``uuid_key``), rendered in the same run.

How, from BigQuery's documentation only (no project needed):
- Sizes: https://cloud.google.com/bigquery/pricing#data_type_sizes: STRING and BYTES 2 + their
  length in bytes, INT64 / FLOAT64 / DATE / TIMESTAMP 8, BOOL 1, STRUCT and ARRAY the sum of what
  they hold, NULL 0. Measured per column on a generated E3 day (every column, its attributes).
- A query bills, per table, the columns it references over the partitions it scans; a MERGE also
  the whole of the partitions it modifies (the day's canonical, empty at a day's first load).
- Which columns and partitions: every statement a day runs (``BigQueryWarehouse.day_queries``) is
  parsed with sqlglot; per table, the columns each SELECT scope references (the MERGE's target: its
  alias's columns) and the partitions its constant filters select (``export_date BETWEEN``: the
  window, ``= DATE``: the day). The previous statements are the module at ``PREVIOUS`` (git).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import bigquery_source_fields
from optimizely_assets.warehouse import dedup_window
from optimizely_assets.warehouse.bigquery import BigQueryWarehouse
from optimizely_assets.warehouse.uuid_key import UUID_KEY, uuid_key

PREVIOUS = "191f15d"  # the last commit before uuid_key
DAY = dt.date(2024, 3, 1)
README_ROWS = 385_000_000  # rows per type and day in the README's scaling example


def logical_bytes(arr: pa.Array) -> int:
    """BigQuery's logical size of an Arrow column (documented per-type sizes; NULL is 0)."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return int(pc.sum(pc.binary_length(arr)).as_py() or 0) + 2 * (len(arr) - arr.null_count)
    if pa.types.is_boolean(t):
        return len(arr) - arr.null_count
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t):
        return 8 * (len(arr) - arr.null_count)
    if pa.types.is_map(t):
        return logical_bytes(arr.keys) + logical_bytes(arr.items)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return logical_bytes(arr.flatten())
    if pa.types.is_struct(t):
        return sum(logical_bytes(f) for f in arr.flatten())
    raise TypeError(f"no documented size for {t}")


def column_sizes(export_type: ExportType, rows: int) -> tuple[dict[str, dict[str, float]], float]:
    """Bytes per row of each column of raw and canonical, and canonical's rows per raw row."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = ExportSpec(decisions_per_day=rows, events_per_day=rows, cross_day_duplicates=0, seed=3)
        (written,) = write_export(Path(tmp), [DAY], spec, types=[export_type])
        table = pa.concat_tables([pq.read_table(Path(tmp) / k) for k in sorted(written.files)])
    raw = {
        name: logical_bytes(table.column(name).combine_chunks()) / table.num_rows
        for name in table.column_names
    }
    keys = [uuid_key(u) for u in table.column("uuid").to_pylist() if u is not None]
    canonical = {
        **raw,
        "export_date": 8.0,
        "event_date": 8.0,
        UUID_KEY: sum(2 + len(k) for k in keys) / len(keys),
    }
    return {"raw": raw, "canonical": canonical}, len(written.unique_uuids) / table.num_rows


def _partitions(where, horizon: int) -> set[int] | None:
    """Day offsets a scope's constant filters select; None when none is found (the whole table)."""
    from sqlglot import exp

    if where is None:
        return None
    for node in where.find_all(exp.Between):
        if isinstance(node.this, exp.Column) and node.this.name == "export_date":
            return set(range(-horizon, horizon + 1))
    for node in where.find_all(exp.EQ):
        if isinstance(node.this, exp.Column) and node.this.name in ("export_date", "_PARTITIONDATE"):
            return {0}
    return None


def scans(sql: str, horizon: int) -> dict[str, tuple[set[str], set[int] | None]]:
    """Per table (``raw`` or ``canonical``): the columns a statement references and its partitions."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    def role(table: exp.Table) -> str:
        return "raw" if table.name.endswith("_raw") else "canonical"

    found: dict[str, tuple[set[str], set[int] | None]] = {}

    def add(r: str, cols: set[str], parts: set[int] | None) -> None:
        have, had = found.get(r, (set(), set()))
        both = None if parts is None or had is None else had | parts
        found[r] = (have | cols, both)

    tree = sqlglot.parse_one(sql, read="bigquery")
    if isinstance(tree, exp.Merge):  # the target: the columns its alias names, the ON clause's window
        alias = tree.this.alias_or_name
        cols = {c.name for c in tree.find_all(exp.Column) if c.table == alias}
        add("canonical", cols, _partitions(tree.args["on"], horizon))
    for scope in traverse_scope(tree):
        tables = {a: s for a, s in scope.sources.items() if isinstance(s, exp.Table)}
        for alias, table in tables.items():
            cols = {c.name for c in scope.columns if c.table == alias or (not c.table and len(tables) == 1)}
            cols |= {c.name for c in scope.columns if not c.table and len(tables) > 1}  # ambiguous: counted
            add(role(table), cols, _partitions(scope.expression.args.get("where"), horizon))
    return found


def _previous_module():
    source = subprocess.run(
        ["git", "show", f"{PREVIOUS}:optimizely_assets/warehouse/bigquery_sql.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent,
    ).stdout
    spec = importlib.util.spec_from_loader("previous_bigquery_sql", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    exec(compile(source, f"{PREVIOUS}:bigquery_sql.py", "exec"), module.__dict__)
    return module


def day_bytes(queries, sizes, rows: int, unique_share: float, horizon: int) -> dict[str, float]:
    """Bytes each statement bills for a day of ``rows`` raw rows, every window day as full."""
    per_partition = {"raw": rows, "canonical": rows * unique_share}
    out: dict[str, float] = {}
    for q in queries:
        if q.name == "delete_raw_day":
            continue  # not run on a day with files (the load job's WRITE_TRUNCATE replaces it)
        total = 0.0
        for r, (cols, parts) in scans(q.sql, horizon).items():
            width = sum(sizes[r].get(c, 0.0) for c in cols)
            n_parts = 1 if r == "raw" else len(parts) if parts is not None else float("inf")
            total += width * per_partition[r] * n_parts
        out[q.name] = total
    return out


def bench_bigquery_bytes(rows: int = 20_000, horizon: int = 30) -> dict:
    wh = BigQueryWarehouse(project="p", dataset="d")
    previous = _previous_module()
    out: dict = {"horizon_days": horizon, "rows_per_day": README_ROWS}
    for t in ExportType:
        sizes, unique_share = column_sizes(t, rows)
        columns = [f["name"] for f in bigquery_source_fields(t)]
        now = wh.day_queries(t, DAY, horizon, columns)
        before = previous.day_queries(
            t,
            wh.ref(f"{t.value}_raw"),
            wh.ref(t.value),
            wh.raw_day_filter(DAY),
            DAY,
            dedup_window(DAY, horizon),
            columns,
        )
        a = day_bytes(before, sizes, README_ROWS, unique_share, horizon)
        b = day_bytes(now, sizes, README_ROWS, unique_share, horizon)
        out[t.value] = {
            "raw_bytes_per_row": round(sum(sizes["raw"].values()), 1),
            "uuid_bytes": round(sizes["raw"]["uuid"], 1),
            "uuid_key_bytes": round(sizes["canonical"][UUID_KEY], 1),
            "previous": {k: int(v) for k, v in a.items()},
            "now": {k: int(v) for k, v in b.items()},
            "previous_total": int(sum(a.values())),
            "now_total": int(sum(b.values())),
            "ratio": round(sum(b.values()) / sum(a.values()), 3),
        }
    return out


def report(r: dict) -> None:
    tb = 1e12
    print(
        f"BigQuery bytes of a day's MERGE and checks at a full window ({2 * r['horizon_days'] + 1} export days), "
        f"{r['rows_per_day']:,} rows per type and day (documented sizes; target <= 0.55x):"
    )
    for t in ExportType:
        x = r[t.value]
        print(
            f"  {t.value}: {x['previous_total'] / tb:.2f} TB -> {x['now_total'] / tb:.2f} TB = {x['ratio']}x "
            f"(a row: {x['raw_bytes_per_row']} B raw; uuid {x['uuid_bytes']} B, uuid_key {x['uuid_key_bytes']} B)"
        )
        for name in sorted(set(x["previous"]) | set(x["now"])):
            a, b = x["previous"].get(name), x["now"].get(name)
            print(
                f"    {name:<24} {'-' if a is None else f'{a / tb:8.3f} TB'}  ->  {'-' if b is None else f'{b / tb:8.3f} TB'}"
            )


if __name__ == "__main__":
    report(bench_bigquery_bytes(rows=int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
