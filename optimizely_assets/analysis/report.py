"""`optimizely-assets results`: the experiment results table in the terminal, as in the UI."""

from __future__ import annotations

from optimizely_assets.analysis.srm import srm_tests
from optimizely_assets.settings import Settings


class NoResultsError(RuntimeError):
    pass


def results_text(settings: Settings, experiment_id: str | None = None) -> str:
    from optimizely_assets.analysis.tables import results_markdown
    from optimizely_assets.definitions import build_resources
    from optimizely_assets.warehouse.analysis import ExperimentAnalysis

    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise NoResultsError(
            f"nothing is loaded under {settings.local_dir}: run `optimizely-assets demo` first"
        )
    analysis = ExperimentAnalysis(build_resources(settings)["warehouse"])
    analysis.ensure_tables()
    rows = analysis.results(experiment_id)
    if not rows:
        which = f"experiment {experiment_id}" if experiment_id else "any experiment"
        raise NoResultsError(
            f"no results for {which} in the warehouse; materialize analysis/experiment_results "
            "(the daily job does) or check the id"
        )
    lines = [results_markdown(rows), ""]
    names = {r.experiment_id: r.experiment_name for r in rows}
    for test in srm_tests(rows, analysis.allocations()):
        verdict = "SAMPLE RATIO MISMATCH" if test.mismatch else "no sample ratio mismatch"
        lines.append(f"{names[test.experiment_id]} ({test.experiment_id}): {verdict} ({test.verdict()})")
    return "\n".join(lines)
