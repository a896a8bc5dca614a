"""The committed sample anchorline.toml is what `anchorline config sample` generates from
the settings classes, documents every field, and loads to the defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import SECTIONS, load_settings
from gateway.config_sample import render_sample, undocumented

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "anchorline.sample.toml"


def test_the_committed_sample_is_the_generated_one() -> None:
    assert SAMPLE.read_text() == render_sample(), (
        "docs/anchorline.sample.toml is stale: run "
        "`anchorline config sample -o docs/anchorline.sample.toml`"
    )


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_setting_has_a_meaning(section: str) -> None:
    assert undocumented(SECTIONS[section]) == [], (
        f"add a comment above these [{section}] fields in gateway/config.py"
    )


def test_the_sample_loads_to_the_defaults(tmp_path: Path) -> None:
    env = {"ANCHORLINE_HOME": str(tmp_path)}
    defaults = load_settings(env)
    loaded = load_settings({**env, "ANCHORLINE_CONFIG": str(SAMPLE)})
    assert loaded == defaults
    every_field = sum(len(cls.__dataclass_fields__) for cls in SECTIONS.values())
    assigned = [line for line in SAMPLE.read_text().splitlines() if " = " in line[:60]]
    assert len([line for line in assigned if not line.startswith("#")]) == every_field


def test_the_command_writes_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "anchorline.toml"
    assert main(["config", "sample", "-o", str(out)]) == 0
    assert out.read_text() == render_sample()


@dataclasses.dataclass(frozen=True)
class _Example:
    """Not a real section."""

    # Documented.
    first: int = 1
    shares_the_comment_above: int = 2

    lonely: str = ""


def test_a_field_without_a_comment_is_found() -> None:
    assert undocumented(_Example) == ["lonely"]
