"""Chaincode packages are reproducible; the sh builder programs do what Fabric expects."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from network.builder import install_builder
from network.chaincode import build_package, check_name, connection_details, resolve_source
from network.errors import ChaincodeError

REPO = Path(__file__).resolve().parents[3]
TESTCC = REPO / "tests" / "chaincode" / "testcc"


def _copy_package(tmp_path: Path) -> Path:
    src = tmp_path / "pkgroot" / "mycc"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("CONTRACTS = []\n")
    (src / "logic.py").write_text("X = 1\n")
    return src


def test_resolve_source_of_the_test_chaincode() -> None:
    source = resolve_source(TESTCC)
    assert source.name == "testcc"
    assert source.module == "tests.chaincode.testcc"
    assert source.pythonpath == REPO


def test_resolve_refuses_missing_and_non_packages(tmp_path: Path) -> None:
    with pytest.raises(ChaincodeError, match="does not exist"):
        resolve_source(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ChaincodeError, match="not a Python package"):
        resolve_source(tmp_path / "plain")
    with pytest.raises(ChaincodeError, match="chaincode name"):
        check_name("Bad Name")


def test_same_source_same_package_id(tmp_path: Path) -> None:
    src = _copy_package(tmp_path)
    first = build_package(resolve_source(src), tmp_path / "out1")
    os.utime(src / "logic.py", (1, 1))  # file times must not matter
    second = build_package(resolve_source(src), tmp_path / "out2")
    assert first.package_id == second.package_id
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.label.startswith("mycc_")


def test_changed_source_new_package_id(tmp_path: Path) -> None:
    src = _copy_package(tmp_path)
    first = build_package(resolve_source(src), tmp_path / "out")
    (src / "logic.py").write_text("X = 2\n")
    second = build_package(resolve_source(src), tmp_path / "out")
    assert first.package_id != second.package_id


def test_package_layout_is_what_the_peer_reads(tmp_path: Path) -> None:
    package = build_package(resolve_source(_copy_package(tmp_path)), tmp_path / "out")
    with tarfile.open(package.path) as outer:
        assert sorted(outer.getnames()) == ["code.tar.gz", "metadata.json"]
        meta = json.load(outer.extractfile("metadata.json"))  # type: ignore[arg-type]
        assert meta == {"label": package.label, "type": "ccaas"}
        for member in outer.getmembers():
            assert member.mtime == 0 and member.uid == 0
        outer.extract("code.tar.gz", tmp_path / "x", filter="data")
    with tarfile.open(tmp_path / "x" / "code.tar.gz") as code:
        conn = json.load(code.extractfile("connection.json"))  # type: ignore[arg-type]
    assert conn["anchorline"] is True and conn["tls_required"] is True


def _run(program: Path, *args: Path, env: dict[str, str] | None = None) -> int:
    return subprocess.run(
        [str(program), *map(str, args)], capture_output=True, env=env, check=False
    ).returncode


def test_builder_detect_build_release(tmp_path: Path) -> None:
    builder = install_builder(tmp_path / "builder") / "bin"
    package = build_package(resolve_source(_copy_package(tmp_path)), tmp_path / "out")
    source, metadata = tmp_path / "source", tmp_path / "metadata"
    with tarfile.open(package.path) as outer:
        outer.extract("metadata.json", metadata, filter="data")
        outer.extract("code.tar.gz", tmp_path, filter="data")
    with tarfile.open(tmp_path / "code.tar.gz") as code:
        code.extractall(source, filter="data")
    assert _run(builder / "detect", source, metadata) == 0

    output, release = tmp_path / "build-out", tmp_path / "release"
    assert _run(builder / "build", source, metadata, output) == 0
    assert (output / "label").read_text().strip() == package.label

    peer_dir = tmp_path / "ccaas" / "peer0.org1"
    peer_dir.mkdir(parents=True)
    details = connection_details("127.0.0.1:7190", "CA PEM", "CERT PEM", "KEY PEM")
    (peer_dir / f"{package.label}.json").write_text(json.dumps(details))
    env = {"PATH": os.defpath, "ANCHORLINE_CCAAS_DIR": str(peer_dir)}
    assert _run(builder / "release", output, release, env=env) == 0
    written = json.loads((release / "chaincode" / "server" / "connection.json").read_text())
    assert written["address"] == "127.0.0.1:7190"
    assert written["root_cert"] == "CA PEM" and written["client_key"] == "KEY PEM"

    # Without its per-peer details, release fails instead of guessing.
    assert _run(builder / "release", output, tmp_path / "r2", env={"PATH": os.defpath}) != 0


def test_builder_detect_refuses_other_packages(tmp_path: Path) -> None:
    builder = install_builder(tmp_path / "builder") / "bin"
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "metadata.json").write_text('{"label": "x", "type": "golang"}')
    (tmp_path / "src").mkdir()
    assert _run(builder / "detect", tmp_path / "src", tmp_path / "meta") == 1
