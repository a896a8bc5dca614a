"""Shared helpers for the chaincode's tests on the real network (see tests/conftest.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from chaincode.contracts.anchor import signing_payload
from gateway.identity.msp import load_msp
from gateway.identity.signing import sign_message
from gateway.ledger.connection import from_profile
from gateway.ledger.gateway import Gateway
from network.profile import NetworkProfile

REPO = Path(__file__).resolve().parents[3]
CHAINCODE_PATH = REPO / "chaincode"
CHAINCODE = "anchorline"


def connect(profile: NetworkProfile, msp_dir: Path, org: str) -> Gateway:
    return from_profile(profile, msp_dir, org=org)


def identity_of(msp_dir: Path, msp_id: str) -> dict[str, str]:
    folder = load_msp(msp_dir, msp_id, require_key=False)
    return {"msp_id": msp_id, "fingerprint": folder.identity.fingerprint}


def signed_batch(msp_dir: Path, msp_id: str, batch: dict[str, Any]) -> str:
    signer = load_msp(msp_dir, msp_id, require_key=True).signer()
    signature = sign_message(signer, signing_payload(batch))
    return json.dumps({**batch, "signature": base64.b64encode(signature).decode()})


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
