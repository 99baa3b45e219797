"""The README's Layout names modules that exist, and every package of the project appears in it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("## Layout", 1)[1].split("```")[1]


def test_every_module_the_layout_names_exists_and_every_package_is_there():
    text = layout()
    named = set(re.findall(r"\b([a-z_]+\.py)\b", text))
    modules = {p.name for p in (REPO / "optimizely_assets").rglob("*.py")}
    assert named - modules == set(), "named in the Layout but not in the package"
    top = {p.name for p in (REPO / "optimizely_assets").glob("*.py") if p.name != "__init__.py"}
    assert top - named == set(), "top-level modules the Layout does not mention"
    packages = {p.parent.name for p in (REPO / "optimizely_assets").glob("*/__init__.py")}
    assert {p for p in packages if f"{p}/" not in text} == set(), "packages the Layout does not mention"
