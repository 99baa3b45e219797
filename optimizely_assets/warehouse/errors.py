"""The warehouse's errors, each naming the table, day or file at fault."""

from __future__ import annotations

from optimizely_assets.loading.staging_copy import StagedFile


class MergeConcurrencyError(RuntimeError):
    """Canonical MERGEs into one table could run side by side; the message says how to fix it."""


class TableLayoutError(RuntimeError):
    """A table exists with another layout (e.g. from an earlier release); nothing is loaded into it."""


def layout_error(table: str, why: str) -> TableLayoutError:
    return TableLayoutError(
        f"{table} exists with another layout ({why}); the loader does not migrate tables. Drop or rename "
        "it (its data can be reloaded from the export), or point the loader at another dataset/directory."
    )


class EmptyDayError(RuntimeError):
    """A day that holds rows came back with no files; replacing it needs explicit permission."""


def name_failed_files(what: str, exc: Exception, files: list[StagedFile]) -> str:
    """A load error with the source key of each staged file it mentions (else of those attempted)."""
    text = str(exc)
    named = [f for f in files if f.uri in text or f.uri.rsplit("/", 1)[-1] in text]
    listed = named or files
    lines = [f"  {f.source_uri} (staged as {f.uri})" for f in listed[:20]]
    if len(listed) > 20:
        lines.append(f"  ... and {len(listed) - 20} more")
    scope = "file(s)" if named else "files attempted (the error names none of them)"
    return f"{what}: {type(exc).__name__}: {text}\n{scope}:\n" + "\n".join(lines)
