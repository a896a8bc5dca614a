"""Settlement contract (``settlement:*``): a trade between two members, tied to an anchored event.

States: ``Proposed`` -> ``Accepted`` -> ``Settled`` (final), and ``Cancelled``
or ``Expired`` (final) from ``Proposed`` or ``Accepted``. Every party check
uses the transaction creator (MSP id + certificate fingerprint, the hex SHA-256
of its DER certificate), never an argument. Times are transaction timestamps.

Settlement record (every function's result)::

    {"settlement_id": str, "state": "Proposed" | "Accepted" | "Settled" |
     "Cancelled" | "Expired",
     "buyer": {"msp_id", "fingerprint"}, "seller": {"msp_id", "fingerprint"},
     "amount": str, "asset": str,
     "event": {"batch_id", "channel", "leaf_index", "leaf_hash", "root"},
     "proof": [hex64...], "expires_at": RFC 3339, "proposed_by": "buyer" | "seller",
     "history": [{"state", "by": {"msp_id", "fingerprint"}, "tx_id", "at"}...]}

Functions
---------
``Propose(proposal)`` (submit)
    ``proposal`` is a JSON object with exactly ``settlement_id`` (1-128 of
    ``[A-Za-z0-9._:-]``), ``buyer`` and ``seller`` (each ``{"msp_id",
    "fingerprint"}``; they must differ), ``amount`` (decimal text, > 0, up to
    18 integer and 8 fraction digits, e.g. ``"125.50"``), ``asset`` (1-256
    characters, no control characters), ``event`` (``{"batch_id",
    "leaf_index", "leaf_hash", "proof"}``: the anchored event the trade
    settles, ``leaf_index`` within its batch, ``proof`` a JSON array of hex
    hashes) and ``expires_at`` (RFC 3339 UTC, after the transaction time).
    The creator must be the buyer or the seller. The batch must be anchored
    and the proof must lead to its root (RFC 6962), else ``conflict``.
    A used ``settlement_id`` is ``conflict``. Event ``SettlementProposed``.

``Accept(settlement_id)`` (submit)
    By the counterparty of the proposer, in ``Proposed``, before
    ``expires_at``; the proof is checked again against the anchored root.
    Event ``SettlementAccepted``.

``Settle(settlement_id)`` (submit)
    By the buyer or the seller, in ``Accepted``, before ``expires_at``.
    Final. Event ``SettlementSettled``.

``Cancel(settlement_id)`` (submit)
    By the buyer or the seller, in ``Proposed`` or ``Accepted``, before
    ``expires_at``. Final. Event ``SettlementCancelled``.

``Expire(settlement_id)`` (submit)
    By anyone, in ``Proposed`` or ``Accepted``, once the transaction time is at
    or after ``expires_at``. Final. Event ``SettlementExpired``.

``GetSettlement(settlement_id)`` (evaluate) -> the record; ``not_found`` if none.

Refusals: a non-party is ``forbidden``; a transition the state does not allow
is ``conflict`` (the message names the current state); acting after
``expires_at`` is ``expired``. Each event's payload is ``{"settlement_id",
"state", "previous_state", "by", "tx_id", "at", "buyer", "seller", "amount",
"asset", "event"}``.
"""

from __future__ import annotations

import re
from typing import Any

from chaincode.contracts import anchor
from chaincode.contracts import validation as v
from chaincode.runtime import (
    BadInput,
    Conflict,
    Context,
    Contract,
    Expired,
    Forbidden,
    NotFound,
    query,
    transaction,
)

SETTLEMENT = "settlement.record"
PROPOSED, ACCEPTED, SETTLED, CANCELLED, EXPIRED = (
    "Proposed",
    "Accepted",
    "Settled",
    "Cancelled",
    "Expired",
)
OPEN = (PROPOSED, ACCEPTED)
AMOUNT = re.compile(r"(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?")
EVENTS = {
    PROPOSED: "SettlementProposed",
    ACCEPTED: "SettlementAccepted",
    SETTLED: "SettlementSettled",
    CANCELLED: "SettlementCancelled",
    EXPIRED: "SettlementExpired",
}


def _party(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"msp_id", "fingerprint"}:
        raise BadInput(f"{field} must be an object with exactly msp_id and fingerprint")
    return {
        "msp_id": v.msp_id(value["msp_id"], f"{field}.msp_id"),
        "fingerprint": v.hex64(value["fingerprint"], f"{field}.fingerprint"),
    }


def _amount(value: Any) -> str:
    if not isinstance(value, str) or not AMOUNT.fullmatch(value):
        raise BadInput('amount must be decimal text like "125.50" (up to 8 decimals)')
    if not any(c not in "0." for c in value):
        raise BadInput("amount must be greater than zero")
    return value


def parse_proposal(raw: str) -> dict[str, Any]:
    doc = v.parse_object(
        raw,
        "proposal",
        {
            "settlement_id": True,
            "buyer": True,
            "seller": True,
            "amount": True,
            "asset": True,
            "event": True,
            "expires_at": True,
        },
    )
    event = doc["event"]
    if not isinstance(event, dict) or set(event) != {
        "batch_id",
        "leaf_index",
        "leaf_hash",
        "proof",
    }:
        raise BadInput(
            "event must be an object with exactly batch_id, leaf_index, leaf_hash, proof"
        )
    proposal = {
        "settlement_id": v.ident(doc["settlement_id"], "settlement_id"),
        "buyer": _party(doc["buyer"], "buyer"),
        "seller": _party(doc["seller"], "seller"),
        "amount": _amount(doc["amount"]),
        "asset": v.text(doc["asset"], "asset", max_len=256),
        "event": {
            "batch_id": v.ident(event["batch_id"], "event.batch_id"),
            "leaf_index": v.uint(event["leaf_index"], "event.leaf_index"),
            "leaf_hash": v.hex64(event["leaf_hash"], "event.leaf_hash"),
        },
        "proof": v.hex_list(event["proof"], "event.proof", max_items=anchor.MAX_PROOF),
        "expires_at": doc["expires_at"],
    }
    v.timestamp(doc["expires_at"], "expires_at")
    if proposal["buyer"] == proposal["seller"]:
        raise BadInput("buyer and seller must be different identities")
    return proposal


async def check_event(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    """The anchored batch the settlement's event belongs to; refuses a proof that fails."""
    event = record["event"]
    try:
        batch = await anchor.load_batch(ctx, event["batch_id"])
    except NotFound as exc:
        raise Conflict(f"event batch {event['batch_id']} is not anchored") from exc
    answer = anchor.verify(
        batch,
        bytes.fromhex(event["leaf_hash"]),
        event["leaf_index"],
        [bytes.fromhex(h) for h in record["proof"]],
    )
    if not answer["included"]:
        raise Conflict(
            f"the event is not included in batch {event['batch_id']}: {answer['reason']} "
            f"(anchored root {batch['root']})"
        )
    return batch


class SettlementContract(Contract):
    """Two-party settlements of anchored events."""

    name = "settlement"

    @transaction("Propose", max_arg_bytes=16384)
    async def propose(self, ctx: Context, proposal: str) -> dict[str, Any]:
        """Open a settlement between buyer and seller (the creator is one of them)."""
        new = parse_proposal(proposal)
        me = _me(ctx)
        if me == new["buyer"]:
            role = "buyer"
        elif me == new["seller"]:
            role = "seller"
        else:
            raise Forbidden("only the buyer or the seller named in the proposal may propose it")
        if v.timestamp(new["expires_at"], "expires_at") <= ctx.tx_time:
            raise BadInput("expires_at must be after the transaction time")
        key = ctx.key(SETTLEMENT, new["settlement_id"])
        if await ctx.get_json(key) is not None:
            raise Conflict(f"settlement {new['settlement_id']} already exists")
        batch = await check_event(ctx, new)
        new["event"]["channel"] = batch["channel"]
        new["event"]["root"] = batch["root"]
        record = {**new, "state": PROPOSED, "proposed_by": role, "history": []}
        return await _record_transition(ctx, key, record, PROPOSED, None)

    @transaction("Accept")
    async def accept(self, ctx: Context, settlement_id: str) -> dict[str, Any]:
        """The counterparty accepts a proposed settlement."""
        key, record = await _load(ctx, settlement_id)
        counterparty = "seller" if record["proposed_by"] == "buyer" else "buyer"
        if _me(ctx) != record[counterparty]:
            raise Forbidden(
                f"only the {counterparty} of settlement {record['settlement_id']} may accept it"
            )
        _require_state(record, (PROPOSED,), "accepted")
        _require_open_time(ctx, record)
        await check_event(ctx, record)
        return await _record_transition(ctx, key, record, ACCEPTED, PROPOSED)

    @transaction("Settle")
    async def settle(self, ctx: Context, settlement_id: str) -> dict[str, Any]:
        """A party marks an accepted settlement as settled (final)."""
        key, record = await _load(ctx, settlement_id)
        _require_party(ctx, record, "settle")
        _require_state(record, (ACCEPTED,), "settled")
        _require_open_time(ctx, record)
        return await _record_transition(ctx, key, record, SETTLED, ACCEPTED)

    @transaction("Cancel")
    async def cancel(self, ctx: Context, settlement_id: str) -> dict[str, Any]:
        """A party cancels a settlement that is not final."""
        key, record = await _load(ctx, settlement_id)
        _require_party(ctx, record, "cancel")
        _require_state(record, OPEN, "cancelled")
        _require_open_time(ctx, record)
        return await _record_transition(ctx, key, record, CANCELLED, record["state"])

    @transaction("Expire")
    async def expire(self, ctx: Context, settlement_id: str) -> dict[str, Any]:
        """Anyone closes a settlement whose expiry has passed."""
        key, record = await _load(ctx, settlement_id)
        _require_state(record, OPEN, "expired")
        if ctx.tx_time < v.timestamp(record["expires_at"], "expires_at"):
            raise Conflict(
                f"settlement {record['settlement_id']} expires at {record['expires_at']}, not yet"
            )
        return await _record_transition(ctx, key, record, EXPIRED, record["state"])

    @query("GetSettlement")
    async def get_settlement(self, ctx: Context, settlement_id: str) -> dict[str, Any]:
        """One settlement record."""
        _, record = await _load(ctx, settlement_id)
        return record


def _me(ctx: Context) -> dict[str, str]:
    return {"msp_id": ctx.identity.msp_id, "fingerprint": ctx.identity.fingerprint}


async def _load(ctx: Context, settlement_id: str) -> tuple[str, dict[str, Any]]:
    key = ctx.key(SETTLEMENT, v.ident(settlement_id, "settlement_id"))
    record = await ctx.get_json(key)
    if record is None:
        raise NotFound(f"settlement {settlement_id} does not exist")
    return key, dict(record)


def _require_state(record: dict[str, Any], allowed: tuple[str, ...], verb: str) -> None:
    if record["state"] not in allowed:
        raise Conflict(
            f"settlement {record['settlement_id']} is {record['state']} and cannot be {verb} "
            f"(only from {' or '.join(allowed)})"
        )


def _require_open_time(ctx: Context, record: dict[str, Any]) -> None:
    if ctx.tx_time >= v.timestamp(record["expires_at"], "expires_at"):
        raise Expired(
            f"settlement {record['settlement_id']} expired at {record['expires_at']}; "
            "call settlement:Expire"
        )


def _require_party(ctx: Context, record: dict[str, Any], verb: str) -> None:
    if _me(ctx) not in (record["buyer"], record["seller"]):
        raise Forbidden(
            f"only the buyer or the seller of settlement {record['settlement_id']} may {verb} it"
        )


async def _record_transition(
    ctx: Context, key: str, record: dict[str, Any], state: str, previous: str | None
) -> dict[str, Any]:
    step = {"state": state, "by": _me(ctx), "tx_id": ctx.tx_id, "at": ctx.tx_time_iso}
    record = {**record, "state": state, "history": [*record["history"], step]}
    await ctx.put_json(key, record)
    ctx.emit(
        EVENTS[state],
        {
            "settlement_id": record["settlement_id"],
            "state": state,
            "previous_state": previous,
            "by": step["by"],
            "tx_id": step["tx_id"],
            "at": step["at"],
            "buyer": record["buyer"],
            "seller": record["seller"],
            "amount": record["amount"],
            "asset": record["asset"],
            "event": record["event"],
        },
    )
    return record


__all__ = ["SettlementContract"]
