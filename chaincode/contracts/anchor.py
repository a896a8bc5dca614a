"""Anchor contract (``anchor:*``): Merkle batch roots chained per live channel.

Every argument is text; results are compact JSON objects (keys sorted).
Refusals are chaincode errors ``"<reason>: <message>"`` (see
:mod:`chaincode.runtime.errors`).

Batch record (what ``AnchorBatch``, ``GetBatch`` and ``ListBatches`` return)::

    {"batch_id": str, "channel": str, "root": hex64, "leaf_count": int,
     "first_seq": int, "last_seq": int, "prev_root": hex64 | "",
     "signature": base64,                 # the submitter's, see below
     "height": int,                       # 0 for a channel's first batch, then +1
     "submitter": {"msp_id": str, "fingerprint": hex64},
     "tx_id": str, "anchored_at": "2026-11-25T12:00:00.000000Z"}

``anchored_at`` is the transaction's timestamp (the same on every endorser).
``fingerprint`` is the hex SHA-256 of the submitter's certificate (DER); the
certificate itself is not stored (an auditor matches it by fingerprint).

Functions
---------
``AnchorBatch(batch)`` (submit)
    ``batch`` is a JSON object with ``batch_id`` (1-128 of
    ``[A-Za-z0-9._:/-]``, e.g. ``"market/7"``), ``channel`` (same alphabet),
    ``root`` (64 lower-case hex: the RFC 6962 root of the batch's leaves),
    ``leaf_count`` (1..2^32), ``first_seq`` and ``last_seq`` (the channel
    sequences of the first and last leaf; ``last_seq - first_seq + 1 ==
    leaf_count``), ``prev_root`` (the root of the channel's previous batch;
    for the first batch of a channel 64 zeros, or ``""``) and ``signature``;
    optionally ``certificate`` (PEM; must be the submitter's own certificate)
    and ``msp_id`` (must be the submitter's MSP), so the gateway's batch
    record (docs/proof-format.md, ``batch``) can be sent as it is.

    ``signature`` is base64 (standard alphabet, padded) of a DER ECDSA
    signature over SHA-256 of :func:`signing_payload`, the "batch signing
    bytes" of docs/proof-format.md: the RFC 8785 JSON of
    ``{"type": "anchorline.batch/1", "batch_id", "channel", "root",
    "leaf_count", "first_seq", "last_seq", "prev_root"}``. It must verify
    with the key of the submitting Fabric identity (the transaction creator).

    Rules: the batch extends the channel's chain: ``prev_root`` equals the root
    of the channel's head batch (no gaps, no forks), ``first_seq`` is the head's
    ``last_seq + 1``, and the submitter's MSP is the MSP that anchored the
    channel's first batch. Re-submitting a batch identical in its seven signed
    fields returns the stored record unchanged and writes nothing (idempotent);
    the same ``batch_id`` with any other content is refused (``conflict``).
    Result: the batch record. Event ``BatchAnchored`` with the batch record.

``GetBatch(batch_id)`` (evaluate) -> the batch record; ``not_found`` if none.

``GetHead(channel)`` (evaluate) -> ``{"channel", "batch_id", "root", "height",
    "last_seq", "msp_id"}`` of the channel's newest batch; ``not_found`` if the
    channel has none (its first batch then takes ``prev_root`` ``""``).

``ListBatches(channel, from, limit)`` (evaluate) -> ``{"channel", "batches":
    [record...], "next": int | null}``: the records at heights ``from``,
    ``from+1``… (``from`` >= 0), at most ``limit`` (1..100); ``next`` is the
    height to ask for next, ``null`` when the chain has no more.

``VerifyInclusion(batch_id, leaf_hash, index, proof)`` (evaluate)
    ``leaf_hash`` is 64 hex (``SHA-256(0x00 || leaf)``), ``index`` the leaf's
    0-based position within the batch (decimal text), ``proof`` a JSON array of
    at most 64 hex hashes (RFC 9162 §2.1.3 audit path; tree size is the batch's
    ``leaf_count``). Recomputes the root on-chain. Result ``{"batch_id",
    "included": bool, "root", "computed_root": hex | null, "leaf_count",
    "reason": str | null}``; ``reason`` says why a proof that cannot describe
    this tree fails. Malformed hex is ``bad_input``; an unknown batch
    ``not_found``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.contracts import inclusion
from chaincode.contracts import validation as v
from chaincode.runtime import (
    BadInput,
    Conflict,
    Context,
    Contract,
    Forbidden,
    NotFound,
    canonical_json,
    query,
    transaction,
)
from chaincode.runtime.identity import certificate_fingerprint, load_certificate

BATCH = "anchor.batch"  # batch_id -> record
CHAIN = "anchor.chain"  # channel, height (20 digits) -> batch_id
HEAD = "anchor.head"  # channel -> head summary
SIGNED_FIELDS = ("batch_id", "channel", "root", "leaf_count", "first_seq", "last_seq", "prev_root")
#: The ``type`` member of the signed object (docs/proof-format.md, "Batch signing bytes").
BATCH_RECORD_TYPE = "anchorline.batch/1"
MAX_LEAVES = 2**32
MAX_LIST = 100
MAX_PROOF = 64
EVENT = "BatchAnchored"


def signing_payload(batch: dict[str, Any]) -> bytes:
    """The batch signing bytes: RFC 8785 JSON of the seven signed fields and the type.

    The fields are ASCII strings and integers below 2^53, for which compact,
    key-sorted JSON is exactly RFC 8785.
    """
    signed = {name: batch[name] for name in SIGNED_FIELDS}
    signed["type"] = BATCH_RECORD_TYPE
    return canonical_json(signed)


def _height_key(height: int) -> str:
    return f"{height:020d}"


def parse_batch(raw: str) -> dict[str, Any]:
    fields = {name: True for name in SIGNED_FIELDS}
    fields.update(signature=True, certificate=False, msp_id=False)
    doc = v.parse_object(raw, "batch", fields)
    batch = {
        "batch_id": v.ident(doc["batch_id"], "batch.batch_id"),
        "channel": v.ident(doc["channel"], "batch.channel"),
        "root": v.hex64(doc["root"], "batch.root"),
        "leaf_count": v.uint(doc["leaf_count"], "batch.leaf_count", minimum=1, maximum=MAX_LEAVES),
        "first_seq": v.uint(doc["first_seq"], "batch.first_seq"),
        "last_seq": v.uint(doc["last_seq"], "batch.last_seq"),
        "prev_root": doc["prev_root"],
        "signature": doc["signature"],
    }
    if "certificate" in doc:
        v.text(doc["certificate"], "batch.certificate", max_len=8192, allow_newlines=True)
        batch["certificate"] = doc["certificate"]
    if "msp_id" in doc:
        batch["msp_id"] = v.msp_id(doc["msp_id"], "batch.msp_id")
    if batch["prev_root"] != "":
        v.hex64(batch["prev_root"], "batch.prev_root")
    if batch["last_seq"] - batch["first_seq"] + 1 != batch["leaf_count"]:
        raise BadInput("batch.last_seq - batch.first_seq + 1 must equal batch.leaf_count")
    sig = batch["signature"]
    if not isinstance(sig, str) or not 8 <= len(sig) <= 256:
        raise BadInput("batch.signature must be base64 of a DER ECDSA signature")
    try:
        base64.b64decode(sig, validate=True)
    except binascii.Error as exc:
        raise BadInput("batch.signature must be base64 of a DER ECDSA signature") from exc
    return batch


def check_submitter(ctx: Context, batch: dict[str, Any]) -> None:
    """The optional certificate and MSP name the creator; the signature is the creator's."""
    me = ctx.identity
    if "msp_id" in batch and batch["msp_id"] != me.msp_id:
        raise Forbidden(f"batch.msp_id {batch['msp_id']} is not the submitter's MSP {me.msp_id}")
    if "certificate" in batch:
        try:
            named = load_certificate(batch["certificate"].encode())
        except ValueError as exc:
            raise BadInput("batch.certificate must be a PEM certificate") from exc
        if certificate_fingerprint(named) != me.fingerprint:
            raise Forbidden("batch.certificate is not the submitter's certificate")
    key = me.certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Forbidden("the submitter's certificate does not hold an ECDSA key")
    try:
        key.verify(
            base64.b64decode(batch["signature"]),
            signing_payload(batch),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature as exc:
        raise Forbidden(
            "batch.signature does not verify with the submitter's certificate over the "
            "canonical JSON of the signed fields"
        ) from exc


async def load_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    record = await ctx.get_json(ctx.key(BATCH, batch_id))
    if record is None:
        raise NotFound(f"batch {batch_id} is not anchored")
    return dict(record)


class AnchorContract(Contract):
    """Merkle batch anchors, one hash chain per live channel."""

    name = "anchor"

    @transaction("AnchorBatch", max_arg_bytes=8192)
    async def anchor_batch(self, ctx: Context, batch: str) -> dict[str, Any]:
        """Anchor one batch at the head of its channel's chain (idempotent)."""
        new = parse_batch(batch)
        existing = await ctx.get_json(ctx.key(BATCH, new["batch_id"]))
        if existing is not None:
            if all(existing[f] == new[f] for f in SIGNED_FIELDS):
                return dict(existing)
            if existing["root"] != new["root"]:
                raise Conflict(
                    f"batch {new['batch_id']} is already anchored with root {existing['root']}; "
                    "a batch id cannot be reused for a different root"
                )
            raise Conflict(
                f"batch {new['batch_id']} is already anchored with different fields "
                f"({', '.join(f for f in SIGNED_FIELDS if existing[f] != new[f])})"
            )
        check_submitter(ctx, new)
        head = await ctx.get_json(ctx.key(HEAD, new["channel"]))
        me = ctx.identity
        if head is None:
            if new["prev_root"] not in ("", v.ZERO_ROOT):
                raise Conflict(
                    f"channel {new['channel']} has no anchored batch: its first batch must have "
                    'prev_root "" or 64 zeros'
                )
            height = 0
        else:
            if new["prev_root"] != head["root"]:
                raise Conflict(
                    f"prev_root {new['prev_root'] or '(empty)'} is not the head of channel "
                    f"{new['channel']}: the head is batch {head['batch_id']} at height "
                    f"{head['height']} with root {head['root']} (no gaps, no forks)"
                )
            if new["first_seq"] != head["last_seq"] + 1:
                raise Conflict(
                    f"first_seq {new['first_seq']} does not follow the head's last_seq "
                    f"{head['last_seq']} on channel {new['channel']}"
                )
            if me.msp_id != head["msp_id"]:
                raise Forbidden(
                    f"channel {new['channel']} is anchored by {head['msp_id']}; "
                    f"{me.msp_id} may not extend its chain"
                )
            height = head["height"] + 1
        record = {
            **{name: new[name] for name in (*SIGNED_FIELDS, "signature")},
            "height": height,
            "submitter": {"msp_id": me.msp_id, "fingerprint": me.fingerprint},
            "tx_id": ctx.tx_id,
            "anchored_at": ctx.tx_time_iso,
        }
        await ctx.put_json(ctx.key(BATCH, new["batch_id"]), record)
        await ctx.put_json(
            ctx.key(CHAIN, new["channel"], _height_key(height)), {"batch_id": new["batch_id"]}
        )
        await ctx.put_json(
            ctx.key(HEAD, new["channel"]),
            {
                "channel": new["channel"],
                "batch_id": new["batch_id"],
                "root": new["root"],
                "height": height,
                "last_seq": new["last_seq"],
                "msp_id": me.msp_id,
            },
        )
        ctx.emit(EVENT, record)
        return record

    @query("GetBatch")
    async def get_batch(self, ctx: Context, batch_id: str) -> dict[str, Any]:
        """The record of one anchored batch."""
        return await load_batch(ctx, v.ident(batch_id, "batch_id"))

    @query("GetHead")
    async def get_head(self, ctx: Context, channel: str) -> dict[str, Any]:
        """The newest batch of a channel's chain."""
        head = await ctx.get_json(ctx.key(HEAD, v.ident(channel, "channel")))
        if head is None:
            raise NotFound(f"channel {channel} has no anchored batch")
        return dict(head)

    @query("ListBatches")
    async def list_batches(
        self, ctx: Context, channel: str, from_height: str, limit: str
    ) -> dict[str, Any]:
        """A page of a channel's chain, oldest first."""
        v.ident(channel, "channel")
        first = v.uint_arg(from_height, "from")
        count = v.uint_arg(limit, "limit", minimum=1, maximum=MAX_LIST)
        head = await ctx.get_json(ctx.key(HEAD, channel))
        top = -1 if head is None else int(head["height"])
        batches = []
        # Heights are contiguous, so a page is point reads, not a range scan.
        for height in range(first, min(first + count, top + 1)):
            link = await ctx.get_json(ctx.key(CHAIN, channel, _height_key(height)))
            if link is None:  # cannot happen while the chain is intact
                raise NotFound(f"channel {channel} has no batch at height {height}")
            batches.append(await load_batch(ctx, link["batch_id"]))
        following = first + len(batches)
        return {
            "channel": channel,
            "batches": batches,
            "next": following if following <= top else None,
        }

    @query("VerifyInclusion", max_arg_bytes=8192)
    async def verify_inclusion(
        self, ctx: Context, batch_id: str, leaf_hash: str, index: str, proof: str
    ) -> dict[str, Any]:
        """Recompute the batch root from a leaf hash and its audit path."""
        v.ident(batch_id, "batch_id")
        leaf = bytes.fromhex(v.hex64(leaf_hash, "leaf_hash"))
        position = v.uint_arg(index, "index")
        try:
            path_doc = json.loads(proof)
        except (ValueError, RecursionError) as exc:
            raise BadInput("proof must be a JSON array of hex hashes") from exc
        path = [bytes.fromhex(h) for h in v.hex_list(path_doc, "proof", max_items=MAX_PROOF)]
        return verify(await load_batch(ctx, batch_id), leaf, position, path)


def verify(record: dict[str, Any], leaf: bytes, index: int, path: list[bytes]) -> dict[str, Any]:
    """The VerifyInclusion answer for an already loaded batch record."""
    result: dict[str, Any] = {
        "batch_id": record["batch_id"],
        "root": record["root"],
        "leaf_count": record["leaf_count"],
        "computed_root": None,
        "included": False,
        "reason": None,
    }
    try:
        computed = inclusion.root_from_inclusion_proof(index, record["leaf_count"], leaf, path)
    except inclusion.ProofError as exc:
        result["reason"] = str(exc)
        return result
    result["computed_root"] = computed.hex()
    result["included"] = computed.hex() == record["root"]
    if not result["included"]:
        result["reason"] = "the proof leads to a different root"
    return result
