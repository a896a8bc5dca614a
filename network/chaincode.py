"""Chaincode as a service: reproducible packages, lifecycle, and one server per peer.

A chaincode is a Python package (a folder with ``__init__.py``, or one ``.py``
module) that defines ``CONTRACTS`` for ``chaincode.runtime``. Deploying it:

1. package it as a CCaaS package. The archive holds only a connection
   template and a digest of the chaincode's source, written with fixed file
   times, owners and modes, so the same source always gives the same package
   id and a changed source a new one (and a new sequence);
2. write each peer's connection details (its chaincode server's address, TLS
   PEMs) where our external builder reads them;
3. start one chaincode server per peer (``python -m chaincode.runtime <module>``);
4. install on every peer, approve for every org, commit (the channel's
   MAJORITY endorsement policy applies);
5. return once every peer's Gateway answers the chaincode and an endorsement
   across orgs succeeds.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from network.errors import ChaincodeError

# Default contract API metadata function: every chaincode.runtime chaincode answers it.
METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclasses.dataclass(frozen=True)
class ChaincodeSource:
    name: str
    module: str  # dotted import path passed to chaincode.runtime
    pythonpath: Path  # folder that makes ``module`` importable
    digest: str  # sha256 over the source files (path + content)


@dataclasses.dataclass(frozen=True)
class Package:
    path: Path
    label: str
    package_id: str


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ChaincodeError(
            f"chaincode name {name!r}: use lower-case letters, digits, '_' and '-' "
            "(start with a letter, at most 64)"
        )
    return name


def _source_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for item in sorted(path.rglob("*")):
        skipped = set(item.relative_to(path).parts) & _SKIP_DIRS
        if item.is_file() and not skipped and item.suffix not in (".pyc", ".pyo"):
            yield item


def resolve_source(path: Path, name: str | None = None) -> ChaincodeSource:
    """Find the import path of the chaincode at ``path``; refuse what cannot be served."""
    path = path.expanduser()
    if not path.exists():
        raise ChaincodeError(f"chaincode path {path} does not exist")
    path = path.resolve()
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise ChaincodeError(f"chaincode path {path} is not a Python package (no __init__.py)")
        parts = [path.name]
        top = path.parent
    elif path.suffix == ".py":
        parts = [path.stem]
        top = path.parent
    else:
        raise ChaincodeError(f"chaincode path {path} is neither a package folder nor a .py file")
    # Climb while the parent is itself a package, so relative imports keep working.
    while (top / "__init__.py").is_file():
        parts.insert(0, top.name)
        top = top.parent
    module = ".".join(parts)
    digest = hashlib.sha256()
    for item in _source_files(path):
        rel = item.relative_to(path) if path.is_dir() else Path(item.name)
        digest.update(str(rel).encode() + b"\0" + item.read_bytes() + b"\0")
    chosen = check_name(name or parts[-1].replace("_", "-").lower())
    return ChaincodeSource(chosen, module, top, digest.hexdigest())


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    """A gzip'd tar of ``files`` that depends on nothing but their names and bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_package(source: ChaincodeSource, packages_dir: Path) -> Package:
    """Write the CCaaS package for ``source``; same source, same bytes, same package id."""
    label = f"{source.name}_{source.digest[:16]}"
    connection = {
        "anchorline": True,
        "address": "",
        "dial_timeout": "10s",
        "tls_required": True,
        "client_auth_required": True,
    }
    manifest = {"name": source.name, "module": source.module, "source_sha256": source.digest}
    code = _tar_bytes(
        {
            "connection.json": json.dumps(connection, sort_keys=True).encode(),
            "anchorline.json": json.dumps(manifest, sort_keys=True).encode(),
        }
    )
    metadata = json.dumps({"label": label, "type": "ccaas"}, sort_keys=True).encode()
    package = _tar_bytes({"code.tar.gz": code, "metadata.json": metadata})
    packages_dir.mkdir(parents=True, exist_ok=True)
    path = packages_dir / f"{label}.tar.gz"
    path.write_bytes(package)
    return Package(path, label, f"{label}:{hashlib.sha256(package).hexdigest()}")


def connection_details(
    address: str, server_ca_pem: str, client_cert_pem: str, client_key_pem: str
) -> dict[str, object]:
    """What the builder's ``release`` merges into connection.json for one peer."""
    return {
        "address": address,
        "dial_timeout": "10s",
        "tls_required": True,
        "client_auth_required": True,
        "root_cert": server_ca_pem,
        "client_cert": client_cert_pem,
        "client_key": client_key_pem,
    }
