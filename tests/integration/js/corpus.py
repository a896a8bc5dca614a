"""The shared proof corpus: proofs a real gateway served, and altered copies of them.

Each case is ``{name, proof, gateway_msp?}``; :func:`reference_verdict` is what the
reference verifier (``gateway.anchoring.proof.verify_offline``, the code behind
``anchorline verify --offline``) says about it. The JavaScript verifier must say the same.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gateway.anchoring.proof import EventProof, verify_offline
from gateway.client import MemberClient
from gateway.identity.certificates import TrustStore
from gateway.identity.signing import P256_ORDER
from gateway.merkle.errors import ProofDocumentError

Proof = dict[str, Any]

# Payloads that exercise RFC 8785: non-ASCII and astral text, escapes, floats, nesting.
PAYLOADS: list[Any] = [
    {"amount": 12, "item": "lot-7", "note": "café ☕"},
    {"amount": 0.1, "ratio": 1.5e-7, "tiny": 5e-324, "neg": -0.0, "big": 9007199254740991},
    {"text": 'tab\there "quoted" back\\slash \u0001 \u2028', "emoji": "😀𝄞"},
    {"nested": [{"b": 1, "a": [True, False, None]}, [], {}], "€": "euro key", "\u0080": 1},
    ["a list payload", 333333333.33333329, -1.7976931348623157e-308],
    "just a string",
]


async def wait_finalized(client: MemberClient, channel: str, seq: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await client.get(f"/events/{channel}/{seq}")
        if body.get("status") == "finalized":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{channel}/{seq} not finalized within {timeout} s")


def _flip_s(signature_b64: str) -> str:
    r, s = decode_dss_signature(base64.b64decode(signature_b64))
    return base64.b64encode(encode_dss_signature(r, P256_ORDER - s)).decode()


def _set(path: str, value: Any) -> Callable[[Proof], None]:
    def apply(p: Proof) -> None:
        *parents, last = path.split(".")
        target: Any = p
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _delete(path: str) -> Callable[[Proof], None]:
    def apply(p: Proof) -> None:
        *parents, last = path.split(".")
        target: Any = p
        for key in parents:
            target = target[key]
        del target[last]

    return apply


def altered_cases(
    base: Proof,
    *,
    other: Proof,
    other_member_cert: str,
    foreign_cert: tuple[str, str],
) -> list[dict[str, Any]]:
    """Known alterations of ``base`` (a valid proof whose leaf has siblings).

    ``other`` is another valid proof (its signature is reused), ``other_member_cert`` a
    valid member certificate of another org, ``foreign_cert`` a certificate (and its
    fingerprint) issued by a CA with a trusted CA's name but another key.
    """
    ev, batch = base["event"], base["batch"]
    rec = ev["record"]
    payload = rec["payload"]
    changed_payload = (
        {**payload, "amount": 13} if isinstance(payload, dict) else {"changed": payload}
    )
    sib = base["inclusion"]["siblings"]
    mutations: dict[str, tuple[Callable[[Proof], None], ...]] = {
        "payload-altered": (_set("event.record.payload", changed_payload),),
        "id-altered": (_set("event.record.id", rec["id"] + "x"),),
        "client-ts-altered": (_set("event.record.client_ts", rec["client_ts"] + 1),),
        "channel-altered": (_set("event.record.channel", rec["channel"] + "x"),),
        "signature-of-another-event": (_set("event.signature", other["event"]["signature"]),),
        "signature-high-s": (_set("event.signature", _flip_s(ev["signature"])),),
        "signer-altered": (_set("event.signer", "00" * 32),),
        "certificate-of-another-member": (_set("event.certificate", other_member_cert),),
        "msp-claim-wrong": (_set("event.msp_id", "Org3MSP"),),
        "msp-claim-absent": (_delete("event.msp_id"),),
        "foreign-ca-sender": (
            _set("event.certificate", foreign_cert[0]),
            _set("event.signer", foreign_cert[1]),
        ),
        "leaf-hash-altered": (_set("leaf_hash", "ff" * 32),),
        "sibling-altered": (_set("inclusion.siblings.0", "00" * 32),),
        "sibling-dropped": (_set("inclusion.siblings", sib[:-1]),),
        "sibling-added": (_set("inclusion.siblings", [*sib, "11" * 32]),),
        "sibling-short": (_set("inclusion.siblings.0", "abcd"),),
        "index-altered": (_set("inclusion.index", base["inclusion"]["index"] + 1),),
        "index-out-of-range": (_set("inclusion.index", batch["leaf_count"] + 3),),
        "seq-altered": (_set("event.seq", ev["seq"] + 1),),
        "batch-size-altered": (_set("inclusion.batch_size", batch["leaf_count"] + 1),),
        "batch-root-altered": (_set("batch.root", "ab" * 32),),
        "batch-first-seq-altered": (_set("batch.first_seq", batch["first_seq"] + 1),),
        "batch-prev-root-altered": (_set("batch.prev_root", "01" * 32),),
        "batch-channel-altered": (_set("batch.channel", batch["channel"] + "x"),),
        "batch-signature-altered": (_set("batch.signature", ev["signature"]),),
        "gateway-certificate-of-a-member": (_set("batch.certificate", other_member_cert),),
        "gateway-msp-claim-wrong": (_set("batch.msp_id", "Org2MSP"),),
        "anchor-null": (_set("anchor", None),),
        "anchor-uncommitted": (_set("anchor.block_number", None),),
        # Malformed documents: the verifier refuses them naming the field.
        "format-wrong": (_set("format", "anchorline.event-proof/2"),),
        "format-missing": (_delete("format"),),
        "leaf-hash-missing": (_delete("leaf_hash"),),
        "root-upper-case-hex": (_set("batch.root", batch["root"].upper()),),
        "signature-not-base64": (_set("event.signature", "not base64!"),),
        "signature-unpadded": (_set("event.signature", ev["signature"].rstrip("=")),),
        "siblings-not-a-list": (_set("inclusion.siblings", "00"),),
        "sibling-not-hex": (_set("inclusion.siblings.0", "zz"),),
        "client-ts-negative": (_set("event.record.client_ts", -1),),
        "client-ts-string": (_set("event.record.client_ts", "1"),),
        "seq-boolean": (_set("event.seq", True),),
        "record-payload-missing": (_delete("event.record.payload"),),
        "anchor-not-an-object": (_set("anchor", "tx"),),
        "batch-missing": (_delete("batch"),),
        "status-missing": (_delete("status"),),
        "msp-id-not-a-string": (_set("event.msp_id", 7),),
    }
    cases = []
    for name, steps in mutations.items():
        proof = copy.deepcopy(base)
        for step in steps:
            step(proof)
        cases.append({"name": name, "proof": proof})
    cases.append(
        {"name": "gateway-msp-pinned-right", "proof": base, "gateway_msp": batch["msp_id"]}
    )
    cases.append({"name": "gateway-msp-pinned-wrong", "proof": base, "gateway_msp": "Org2MSP"})
    return cases


def reference_verdict(case: dict[str, Any], trust: TrustStore, at_ms: int) -> dict[str, Any]:
    """What the reference verifier says: ``{malformed: field}`` or ``{ok, checks}``."""
    try:
        proof = EventProof.from_json(case["proof"])
    except ProofDocumentError as exc:
        return {"malformed": exc.details.get("field")}
    verdict = verify_offline(
        proof,
        trust,
        at=dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC),
        gateway_msp=case.get("gateway_msp"),
    )
    return {"ok": verdict.ok, "checks": {c.name: c.ok for c in verdict.checks}}


def trust_spec(org_msps: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """``{msp_id: {cacerts: [pem], crls: [pem]}}`` of org MSP folders (what the JS reads)."""

    def pems(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return [p.read_text() for p in sorted(folder.iterdir()) if p.is_file()]

    return {
        msp_id: {"cacerts": pems(Path(d) / "cacerts"), "crls": pems(Path(d) / "crls")}
        for msp_id, d in org_msps.items()
    }
