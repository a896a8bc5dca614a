"""The peers' external builder for chaincode as a service: ``bin/detect``, ``bin/build``,
``bin/release``.

Fabric runs these three programs itself (core.yaml ``chaincode.externalBuilders``).
They are POSIX sh with ``grep``, ``sed`` and ``cp`` only, so they run on a host
and inside the official (Alpine) peer image alike.

A package is ours when its ``metadata.json`` says ``"type": "ccaas"`` and its
code archive's ``connection.json`` carries ``"anchorline": true``. The address
and TLS material are not in the package: ``release`` copies the complete
connection.json for the peer that runs it from ``$ANCHORLINE_CCAAS_DIR/<label>.json``
(written by ``deploy-chaincode``), so one package id serves one chaincode
server per org, and the package id depends on no key or port.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROGRAMS = ("detect", "build", "release")
SOURCE = Path(__file__).parent / "bin"


def install_builder(target: Path) -> Path:
    """Copy the three programs to ``target/bin``, executable; return ``target``.

    Copied rather than used in place so that an installed package, whose data
    files may lose their mode bits, still yields executables.
    """
    bin_dir = target / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in PROGRAMS:
        shutil.copyfile(SOURCE / name, bin_dir / name)
        (bin_dir / name).chmod(0o755)
    return target
