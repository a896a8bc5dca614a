"""Finding Fabric: FABRIC_HOME, then PATH (symlinks resolved), then the default root."""

from __future__ import annotations

from pathlib import Path

import pytest

from network.errors import FabricNotFound
from network.install import REQUIRED_BINARIES, REQUIRED_CONFIG, find_fabric, missing_parts


def make_release(root: Path, version: str = "2.5.16", ca_version: str = "1.5.21") -> Path:
    """A fake release layout whose binaries answer `version` like Fabric's."""
    (root / "bin").mkdir(parents=True)
    (root / "config").mkdir()
    for name in REQUIRED_BINARIES:
        shown = ca_version if name.startswith("fabric-ca") else version
        script = root / "bin" / name
        script.write_text(f"#!/bin/sh\necho '{name}:'\necho ' Version: v{shown}'\n")
        script.chmod(0o755)
    for name in REQUIRED_CONFIG:
        (root / "config" / name).write_text("# fake\n")
    return root


def test_fabric_home_wins(tmp_path: Path) -> None:
    home = make_release(tmp_path / "fabric")
    other = make_release(tmp_path / "other")
    found = find_fabric(home, str(other / "bin"), default_root=tmp_path / "none")
    assert found.root == home and found.source == "FABRIC_HOME"
    assert found.fabric_version == "2.5.16" and found.ca_version == "1.5.21"
    assert found.config_dir == home / "config"
    assert found.warnings == ()


def test_fabric_home_pointing_at_nothing_is_an_error(tmp_path: Path) -> None:
    make_release(tmp_path / "default")
    with pytest.raises(FabricNotFound, match="does not exist"):
        find_fabric(tmp_path / "nothing", None, default_root=tmp_path / "default")


def test_fabric_home_incomplete_names_what_is_missing(tmp_path: Path) -> None:
    home = make_release(tmp_path / "fabric")
    (home / "bin" / "osnadmin").unlink()
    (home / "config" / "core.yaml").unlink()
    with pytest.raises(FabricNotFound, match=r"bin/osnadmin.*config/core\.yaml"):
        find_fabric(home, None, default_root=tmp_path / "none")


def test_path_resolves_symlinks_to_the_release_root(tmp_path: Path) -> None:
    release = make_release(tmp_path / "opt" / "fabric")
    links = tmp_path / "usr-local-bin"
    links.mkdir()
    for name in REQUIRED_BINARIES:
        (links / name).symlink_to(release / "bin" / name)
    found = find_fabric(None, f"{tmp_path / 'empty'}:{links}", default_root=tmp_path / "none")
    assert found.root == release and found.source == "PATH"
    assert found.config_dir == release / "config"


def test_default_root_is_last(tmp_path: Path) -> None:
    default = make_release(tmp_path / "default")
    found = find_fabric(None, str(tmp_path / "nowhere"), default_root=default)
    assert found.root == default and found.source == "default"


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FabricNotFound) as err:
        find_fabric(None, str(tmp_path), default_root=tmp_path / "none")
    assert "no 'peer' on PATH" in err.value.message
    assert "FABRIC_HOME" in err.value.message


def test_dev_build_latest_is_accepted_with_a_warning(tmp_path: Path) -> None:
    home = make_release(tmp_path / "fabric", version="latest")
    found = find_fabric(home, None)
    assert found.fabric_version == "latest"
    assert any("development build" in w for w in found.warnings)


def test_other_minor_version_warns(tmp_path: Path) -> None:
    home = make_release(tmp_path / "fabric", version="2.4.9")
    assert any("2.4.9" in w for w in find_fabric(home, None).warnings)


def test_missing_parts_of_complete_layout_is_empty(tmp_path: Path) -> None:
    assert missing_parts(make_release(tmp_path / "f")) == []
