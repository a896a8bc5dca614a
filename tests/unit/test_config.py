"""The one settings object: defaults, then the TOML file, then the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError


def test_defaults_without_file_or_variables(tmp_path: Path) -> None:
    settings = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.network_dir == tmp_path / "network"
    assert settings.fabric_home is None
    assert settings.ledger.kind == "auto"
    assert settings.gateway.host == "127.0.0.1"
    assert settings.search_path == os.defpath


def test_environment_overrides_file(tmp_path: Path) -> None:
    (tmp_path / "anchorline.toml").write_text(
        '[gateway]\nport = 9000\ndomain = "from-file"\n[ledger]\nkind = "embedded"\n'
    )
    settings = load_settings(
        {
            "ANCHORLINE_HOME": str(tmp_path),
            "ANCHORLINE_GATEWAY_PORT": "9443",
            "FABRIC_HOME": "/opt/somewhere",
            "PATH": "/x/bin:/y/bin",
        }
    )
    assert settings.gateway.port == 9443
    assert settings.gateway.domain == "from-file"
    assert settings.ledger.kind == "embedded"
    assert settings.fabric_home == Path("/opt/somewhere")
    assert settings.search_path == "/x/bin:/y/bin"


@pytest.mark.parametrize(
    ("env", "file", "message"),
    [
        ({"ANCHORLINE_GATEWAY_PORT": "eighty"}, None, "ANCHORLINE_GATEWAY_PORT: 'eighty'"),
        ({"ANCHORLINE_LEDGER_KIND": "cloud"}, None, "not one of auto, fabric, embedded"),
        ({}, "[gateway]\nprot = 1\n", "unknown setting(s) in [gateway]: prot"),
        ({}, "[gatway]\n", "unknown section(s) gatway"),
        ({}, "[gateway\n", "not valid TOML"),
    ],
)
def test_bad_settings_say_what_to_fix(
    tmp_path: Path, env: dict[str, str], file: str | None, message: str
) -> None:
    if file is not None:
        (tmp_path / "anchorline.toml").write_text(file)
    with pytest.raises(ConfigError) as raised:
        load_settings({"ANCHORLINE_HOME": str(tmp_path), **env})
    assert message in raised.value.message


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"ANCHORLINE_HOME": str(tmp_path), "ANCHORLINE_CONFIG": "/nope.toml"})
