"""How a canonical row becomes a Mixpanel event: the default mapping, and a YAML/JSON file over it.

A mapping file has a section per export type, each rule optional:

    decisions:
      event: $experiment_started      # the event name; "{column}" takes it from a column
      rename: {is_holdback: Holdback} # property renames
      include: [campaign_id]          # columns sent as properties (replaces the default list)
      exclude: [user_agent]           # columns never sent
      attributes: flatten             # user attributes: flatten (one property each) | nested | drop
      attribute_prefix: ""            # before each flattened attribute's name
      unnamed_event: (no event_name)  # the name when "{column}" is NULL; null: to the dead letters

Every row gets ``distinct_id`` = visitor_id, ``time`` = timestamp (process_timestamp when NULL) in
ms, and ``$insert_id`` from uuid (``insert_id``). A rule the file gets wrong is an error naming it,
raised when the file is read: before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import SCHEMAS

RESERVED = {"distinct_id", "time", "$insert_id", "token"}
ATTRIBUTE_MODES = ("flatten", "nested", "drop")
_INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
# Mixpanel rejects these distinct_ids as placeholders (docs: troubleshooting/errors/400-bad-request).
PLACEHOLDER_IDS = {
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "undefined",
    "00000000-0000-0000-0000-000000000000",
}


class MappingError(ValueError):
    pass


@dataclass(frozen=True)
class TypeMapping:
    event: str
    include: tuple[str, ...]
    rename: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    attributes: str = "flatten"
    attribute_prefix: str = ""
    unnamed_event: str | None = None  # the name when the event's column is NULL; None: a dead letter


DEFAULTS = {
    ExportType.DECISIONS: TypeMapping(
        "$experiment_started",
        ("experiment_id", "variation_id", "campaign_id", "is_holdback"),
    ),
    # E3 exports events without an event_name (its `event=NULL` folder): sent under this name.
    ExportType.EVENTS: TypeMapping(
        "{event_name}", ("revenue", "value", "quantity", "tags"), unnamed_event="(no event_name)"
    ),
}
NAMES = ("Experiment name", "Variant name")  # decisions: from the experiments table, else the ids


def insert_id(uuid: str) -> str:
    """Mixpanel's ``$insert_id``: at most 36 characters, letters, digits and ``-``. A uuid that fits is
    kept as it is (a re-run sends the same id, so Mixpanel deduplicates); any other is hashed."""
    if _INSERT_ID.match(uuid):
        return uuid
    return "h" + hashlib.sha256(uuid.encode("utf-8", "surrogatepass")).hexdigest()[:35]


def _check(path: str, export_type: ExportType, rules: dict) -> TypeMapping:
    if not isinstance(rules, dict):
        raise MappingError(f"{path}.{export_type.value}: must be a mapping of rules")
    columns = set(SCHEMAS[export_type].names)
    base = DEFAULTS[export_type]
    known = {"event", "rename", "include", "exclude", "attributes", "attribute_prefix", "unnamed_event"}
    for rule in rules:
        if rule not in known:
            raise MappingError(
                f"{path}.{export_type.value}.{rule}: unknown rule (known: {', '.join(sorted(known))})"
            )
    where = f"{path}.{export_type.value}"
    event = rules.get("event", base.event)
    if not isinstance(event, str) or not event.strip():
        raise MappingError(f"{where}.event: must be a non-empty string")
    for name in re.findall(r"{([^}]*)}", event):
        if name not in columns:
            raise MappingError(f"{where}.event: {{{name}}} is not a column of {export_type.value}")
    lists = {}
    for rule in ("include", "exclude"):
        value = rules.get(rule, list(getattr(base, rule)))
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise MappingError(f"{where}.{rule}: must be a list of column names")
        unknown = [c for c in value if c not in columns]
        if unknown:
            raise MappingError(f"{where}.{rule}: {', '.join(unknown)} not a column of {export_type.value}")
        lists[rule] = tuple(value)
    rename = rules.get("rename", {})
    if not isinstance(rename, dict) or not all(isinstance(v, str) and v for v in rename.values()):
        raise MappingError(f"{where}.rename: must map column names to non-empty property names")
    for column, to in rename.items():
        if column not in columns and column not in NAMES:
            raise MappingError(f"{where}.rename.{column}: not a column of {export_type.value}")
        if to in RESERVED:
            raise MappingError(f"{where}.rename.{column}: {to!r} is set by the feed itself")
    attributes = rules.get("attributes", base.attributes)
    if attributes not in ATTRIBUTE_MODES:
        raise MappingError(f"{where}.attributes: {attributes!r} is not one of {', '.join(ATTRIBUTE_MODES)}")
    prefix = rules.get("attribute_prefix", "")
    if not isinstance(prefix, str):
        raise MappingError(f"{where}.attribute_prefix: must be a string")
    unnamed = rules.get("unnamed_event", base.unnamed_event)
    if unnamed is not None and (not isinstance(unnamed, str) or not unnamed.strip()):
        raise MappingError(f"{where}.unnamed_event: must be a non-empty string, or null to dead-letter them")
    return replace(
        base,
        event=event,
        rename=dict(rename),
        attributes=attributes,
        attribute_prefix=prefix,
        unnamed_event=unnamed,
        **lists,
    )


def load_mapping(path: Path | None) -> dict[ExportType, TypeMapping]:
    """The default mapping, with the file's rules over it; a bad rule is a MappingError naming it."""
    if path is None:
        return dict(DEFAULTS)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error, named with the file
        raise MappingError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}".splitlines()[0]
        ) from None
    data = data or {}
    if not isinstance(data, dict):
        raise MappingError(f"{path}: must be a mapping with `decisions` and/or `events` sections")
    unknown = [k for k in data if k not in {t.value for t in ExportType}]
    if unknown:
        raise MappingError(f"{path}.{unknown[0]}: unknown section (use decisions or events)")
    return {t: _check(str(path), t, data[t.value]) if t.value in data else DEFAULTS[t] for t in ExportType}


def _ms(value) -> int | None:
    if value is None:
        return None
    return int(value.timestamp() * 1000)


def to_event(
    row: dict, mapping: TypeMapping, names: tuple[str | None, str | None] = (None, None)
) -> dict | str:
    """The Mixpanel event of one canonical row, or why it cannot be one (a dead letter's reason)."""
    name = mapping.event
    for column in re.findall(r"{([^}]*)}", name):
        value = row.get(column)
        if value is None or str(value) == "":
            if mapping.unnamed_event is None:
                return f"no event name: {column} is NULL"
            name = mapping.unnamed_event
            break
        name = name.replace("{" + column + "}", str(value))
    time = _ms(row.get("timestamp")) or _ms(row.get("process_timestamp"))
    if time is None:
        return "no time: timestamp and process_timestamp are NULL"
    props: dict = {}
    if mapping.event == "$experiment_started":
        props["Experiment name"] = names[0] or row.get("experiment_id")
        props["Variant name"] = names[1] or row.get("variation_id")
    for column in mapping.include:
        if column in mapping.exclude:
            continue
        value = row.get(column)
        if column == "tags" and value is not None and not isinstance(value, dict):
            # DuckDB's MAP arrives as (key, value) pairs, BigQuery's ARRAY<STRUCT<key, value>> as dicts.
            value = (
                {p["key"]: p["value"] for p in value} if value and isinstance(value[0], dict) else dict(value)
            )
        props[column] = value
    attributes = row.get("attributes") or []
    if mapping.attributes == "flatten" and "attributes" not in mapping.exclude:
        for a in attributes:
            key = a.get("name") or a.get("id")
            if key:
                props[mapping.attribute_prefix + key] = a.get("value")
    elif mapping.attributes == "nested" and "attributes" not in mapping.exclude:
        props["attributes"] = {a.get("name") or a.get("id"): a.get("value") for a in attributes}
    props = {mapping.rename.get(k, k): v for k, v in props.items()}
    props.update(
        {"distinct_id": row.get("visitor_id") or "", "time": time, "$insert_id": insert_id(str(row["uuid"]))}
    )
    return {"event": name, "properties": props}
