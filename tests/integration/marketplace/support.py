"""The marketplace tests' world: a gateway whose trust path runs on the embedded ledger with
the project's contracts (for ``tests/integration/marketplace/`` and ``tests/browser/``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gateway.config import Settings, load_settings


def market_settings(home: Path, **gateway: Any) -> Settings:
    """Settings for a gateway in ``home``, this process's environment ignored: the embedded
    ledger (built-in CA in ``home/embedded/ca``) running ``chaincode.anchorline``, SQLite in
    ``home/events.db`` with synchronous=NORMAL, anchor batches closed after 50 ms (so events
    finalize within a test's patience). ``gateway`` sets other fields of ``[gateway]``."""
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    fields = {
        "database_url": f"sqlite:///{home / 'events.db'}",
        "sqlite_synchronous": "NORMAL",
        **gateway,
    }
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(
            base.ledger, kind="embedded", embedded_contracts="chaincode.anchorline:CONTRACTS"
        ),
        gateway=dataclasses.replace(base.gateway, **fields),
        anchoring=dataclasses.replace(base.anchoring, batch_max_ms=50),
    )
