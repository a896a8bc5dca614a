"""The fan-out is chosen by configuration; the Engine.IO workarounds refuse another version."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.context import CONTEXT
from gateway.errors import ConfigError
from gateway.identity.ca import EmbeddedCA
from gateway.stream.errors import UnsupportedEngineIO
from gateway.stream.fanout import FANOUT_KINDS, LocalFanOut
from gateway.stream.sio import EngineIOInternals
from tests.integration.gateway.support import make_settings


def test_the_default_fanout_is_local(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}")
    assert settings.gateway.fanout == "local" and FANOUT_KINDS == ("local",)
    app = create_app(settings, verifier=EmbeddedCA(tmp_path / "ca").trust_store())
    assert isinstance(app[CONTEXT].hub._fanout, LocalFanOut)


def test_an_unknown_fanout_fails_when_the_app_is_built(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", fanout="carrier-pigeon")
    with pytest.raises(ConfigError) as info:
        create_app(settings, verifier=EmbeddedCA(tmp_path / "ca").trust_store())
    assert info.value.code == "AL1001" and "gateway.fanout" in info.value.message


def test_the_installed_engineio_is_the_pinned_one() -> None:
    assert importlib.metadata.version("python-engineio") == EngineIOInternals.PINNED_VERSION
    EngineIOInternals.check_version()


@pytest.mark.parametrize("other", ["4.15.0", "4.16.0", "5.0.0"])
def test_another_engineio_is_refused_loudly(other: str) -> None:
    with pytest.raises(UnsupportedEngineIO) as info:
        EngineIOInternals(installed=other)
    assert info.value.code == "AL1004"
    assert other in info.value.message and EngineIOInternals.PINNED_VERSION in info.value.message
