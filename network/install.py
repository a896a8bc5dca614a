"""Finding a Fabric install in the layout of Fabric's release archives.

Order of search, first hit wins:

1. ``Settings.fabric_home`` (``$FABRIC_HOME``): must hold ``bin/`` and
   ``config/``; if it is set and points at nothing usable that is an error,
   never a silent fall-through (the user asked for that install).
2. ``PATH``: the ``peer`` binary found there, symlinks resolved; the install
   root is the folder above its ``bin/`` and the config is ``<root>/config``.
3. The well-known default ``/opt/fabric``.

A development build reports its version as ``latest``: it is accepted, with a
warning in :attr:`FabricInstall.warnings`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from network.errors import FabricNotFound

DEFAULT_ROOT = Path("/opt/fabric")

# The binaries the native network runs; fabric-ca-* for identities.
REQUIRED_BINARIES = (
    "peer",
    "orderer",
    "configtxgen",
    "osnadmin",
    "fabric-ca-server",
    "fabric-ca-client",
)
REQUIRED_CONFIG = ("core.yaml", "orderer.yaml")

TESTED_FABRIC = "2.5.16"
TESTED_FABRIC_CA = "1.5.21"

_VERSION_RE = re.compile(r"^\s*Version:\s*v?(\S+)", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class FabricInstall:
    """A usable Fabric install: every required binary and config file is present."""

    root: Path
    bin_dir: Path
    config_dir: Path
    # How it was found: "FABRIC_HOME", "PATH" or "default".
    source: str
    fabric_version: str
    ca_version: str
    warnings: tuple[str, ...] = ()

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


# How each binary prints its version; osnadmin has no version command.
_VERSION_ARGS = {"configtxgen": "-version", "osnadmin": None}


def binary_version(path: Path) -> str:
    """The ``Version:`` line of ``<binary> version`` (``v`` stripped), ``n/a`` or ``unknown``."""
    arg = _VERSION_ARGS.get(path.name, "version")
    if arg is None:
        return "n/a"
    try:
        out = subprocess.run(
            [str(path), arg], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = _VERSION_RE.search(out)
    return match.group(1) if match else "unknown"


def missing_parts(root: Path) -> list[str]:
    """What a release layout at ``root`` lacks (empty when complete)."""
    missing = [
        f"bin/{name}"
        for name in REQUIRED_BINARIES
        if not os.access(root / "bin" / name, os.X_OK) or not (root / "bin" / name).is_file()
    ]
    missing += [
        f"config/{name}" for name in REQUIRED_CONFIG if not (root / "config" / name).is_file()
    ]
    return missing


def _version_warnings(fabric: str, ca: str) -> tuple[str, ...]:
    warnings = []
    for label, found, tested in (
        ("Fabric", fabric, TESTED_FABRIC),
        ("Fabric CA", ca, TESTED_FABRIC_CA),
    ):
        if found == "latest":
            warnings.append(
                f"{label} reports version 'latest' (a development build); tested with {tested}"
            )
        elif found == "unknown":
            warnings.append(f"could not read the {label} version; tested with {tested}")
        elif found.split(".")[:2] != tested.split(".")[:2]:
            warnings.append(f"{label} {found} found; tested with {tested}")
    return tuple(warnings)


def _complete(root: Path, source: str) -> FabricInstall:
    fabric = binary_version(root / "bin" / "peer")
    ca = binary_version(root / "bin" / "fabric-ca-server")
    return FabricInstall(
        root=root,
        bin_dir=root / "bin",
        config_dir=root / "config",
        source=source,
        fabric_version=fabric,
        ca_version=ca,
        warnings=_version_warnings(fabric, ca),
    )


def _root_from_path(path_env: str) -> Path | None:
    found = shutil.which("peer", path=path_env)
    if found is None:
        return None
    real = Path(found).resolve()
    return real.parent.parent


def find_fabric(
    fabric_home: Path | None,
    path_env: str | None = None,
    default_root: Path = DEFAULT_ROOT,
) -> FabricInstall:
    """Find the install, or raise :class:`FabricNotFound` saying what is missing and where.

    ``path_env`` is the PATH to search (the caller passes it; this module reads no
    environment). ``None`` means "do not search PATH".
    """
    if fabric_home is not None:
        if not fabric_home.is_dir():
            raise FabricNotFound(
                f"FABRIC_HOME={fabric_home} does not exist; point it at a Fabric release "
                "folder (with bin/ and config/) or unset it"
            )
        missing = missing_parts(fabric_home)
        if missing:
            raise FabricNotFound(
                f"FABRIC_HOME={fabric_home} is not a Fabric release layout: missing "
                f"{', '.join(missing)}"
            )
        return _complete(fabric_home, "FABRIC_HOME")
    tried: list[str] = []
    if path_env:
        root = _root_from_path(path_env)
        if root is not None:
            missing = missing_parts(root)
            if not missing:
                return _complete(root, "PATH")
            tried.append(f"{root} (from PATH) lacks {', '.join(missing)}")
        else:
            tried.append("no 'peer' on PATH")
    missing = missing_parts(default_root)
    if not missing:
        return _complete(default_root, "default")
    if default_root.is_dir():
        tried.append(f"{default_root} lacks {', '.join(missing)}")
    else:
        tried.append(f"{default_root} does not exist")
    raise FabricNotFound(
        "no Fabric install found: "
        + "; ".join(tried)
        + ". Install the Fabric 2.5 and Fabric CA 1.5 binaries (install-fabric.sh binary, "
        "or your own build) and set FABRIC_HOME to the folder holding bin/ and config/"
    )


def find_fabric_from_env(fabric_home: Path | None, env: Mapping[str, str]) -> FabricInstall:
    """:func:`find_fabric` with PATH taken from ``env`` (the CLI passes ``os.environ``)."""
    return find_fabric(fabric_home, env.get("PATH"))
