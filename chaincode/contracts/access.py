"""Access contract (``access:*``): which members may use which live channel.

A channel is registered by an admin of an org (``anchorline.role=admin`` in
the creator's certificate); that org owns it. Only admins of the owning org
grant and revoke. A grant names its subject by certificate fingerprint (one
member) or by MSP id (every member of an org) and always has an expiry.
Members of the owning org always have access. Times are transaction
timestamps (for ``CheckAccess`` and ``ListGrants``, the evaluating proposal's).

Channel record: ``{"channel", "owner_msp", "registered_by": {"msp_id",
"fingerprint"}, "registered_at", "tx_id"}``.

Grant record: ``{"channel", "grant_id", "subject": {"kind": "fingerprint" |
"msp", "value": str}, "expires_at", "granted_by": {"msp_id", "fingerprint"},
"granted_at", "tx_id"}``; ``grant_id`` is ``"<kind>:<value>"`` (one grant per
subject and channel; granting again replaces it).

Functions
---------
``RegisterChannel(channel)`` (submit) -> channel record. Admin only; a
    registered channel is ``conflict``. Event ``ChannelRegistered``.

``GrantAccess(grant)`` (submit) -> grant record. ``grant`` is a JSON object
    with exactly ``channel``, ``subject`` (``{"kind": "fingerprint", "value":
    hex64}`` or ``{"kind": "msp", "value": msp_id}``) and ``expires_at``
    (RFC 3339 UTC, after the transaction time). Admins of the owning org only.
    Event ``AccessGranted`` with the grant record.

``RevokeAccess(channel, grant_id)`` (submit) -> the revoked grant record plus
    ``"revoked_at"`` and ``"revoked_by"`` (``tx_id`` is the revoking transaction).
    Admins of the owning org only; an unknown grant is ``not_found``.
    Event ``AccessRevoked`` with that record.

``CheckAccess(channel, msp_id, fingerprint)`` (evaluate) -> ``{"channel",
    "allowed": bool, "reason": "owner" | "grant" | "no_grant" | "expired",
    "grant": grant record | null, "checked_at"}``. ``fingerprint`` may be
    ``""`` to ask about an MSP-wide grant only. A fingerprint grant is checked
    before an MSP grant. An unregistered channel is ``not_found``.

``ListGrants(channel)`` (evaluate) -> ``{"channel", "owner_msp", "grants":
    [grant record + "active": bool...]}`` in ``grant_id`` order.

``GetChannel(channel)`` (evaluate) -> the channel record.
"""

from __future__ import annotations

from typing import Any

from chaincode.contracts import validation as v
from chaincode.runtime import (
    BadInput,
    Conflict,
    Context,
    Contract,
    Forbidden,
    NotFound,
    query,
    transaction,
)

CHANNEL = "access.channel"
GRANT = "access.grant"
ADMIN = "admin"
SUBJECT_KINDS = ("fingerprint", "msp")


def parse_subject(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"kind", "value"}:
        raise BadInput("grant.subject must be an object with exactly kind and value")
    kind = v.enum(value["kind"], "grant.subject.kind", SUBJECT_KINDS)
    if kind == "fingerprint":
        subject = v.hex64(value["value"], "grant.subject.value")
    else:
        subject = v.msp_id(value["value"], "grant.subject.value")
    return {"kind": kind, "value": subject}


def make_grant_id(subject: dict[str, str]) -> str:
    return f"{subject['kind']}:{subject['value']}"


def _me(ctx: Context) -> dict[str, str]:
    return {"msp_id": ctx.identity.msp_id, "fingerprint": ctx.identity.fingerprint}


def _require_admin(ctx: Context, action: str) -> None:
    role = ctx.identity.role
    if role != ADMIN:
        raise Forbidden(
            f"only an admin (certificate attribute anchorline.role=admin) may {action}; "
            f"the creator's role is {role or 'absent'}"
        )


async def _channel(ctx: Context, channel: str) -> dict[str, Any]:
    record = await ctx.get_json(ctx.key(CHANNEL, v.ident(channel, "channel")))
    if record is None:
        raise NotFound(f"channel {channel} is not registered")
    return dict(record)


async def _require_owner_admin(ctx: Context, channel: str, action: str) -> dict[str, Any]:
    record = await _channel(ctx, channel)
    _require_admin(ctx, action)
    if ctx.identity.msp_id != record["owner_msp"]:
        raise Forbidden(
            f"channel {channel} is owned by {record['owner_msp']}; only its admins may {action}"
        )
    return record


def _active(grant: dict[str, Any], now: Any) -> bool:
    return bool(v.timestamp(grant["expires_at"], "expires_at") > now)


class AccessContract(Contract):
    """Channel ownership and time-limited grants."""

    name = "access"

    @transaction("RegisterChannel")
    async def register_channel(self, ctx: Context, channel: str) -> dict[str, Any]:
        """An org admin claims a channel for the org."""
        v.ident(channel, "channel")
        _require_admin(ctx, "register a channel")
        key = ctx.key(CHANNEL, channel)
        existing = await ctx.get_json(key)
        if existing is not None:
            raise Conflict(f"channel {channel} is already registered by {existing['owner_msp']}")
        record = {
            "channel": channel,
            "owner_msp": ctx.identity.msp_id,
            "registered_by": _me(ctx),
            "registered_at": ctx.tx_time_iso,
            "tx_id": ctx.tx_id,
        }
        await ctx.put_json(key, record)
        ctx.emit("ChannelRegistered", record)
        return record

    @transaction("GrantAccess", max_arg_bytes=2048)
    async def grant_access(self, ctx: Context, grant: str) -> dict[str, Any]:
        """Grant a member or an org access to a channel until ``expires_at``."""
        doc = v.parse_object(grant, "grant", {"channel": True, "subject": True, "expires_at": True})
        channel = v.ident(doc["channel"], "grant.channel")
        subject = parse_subject(doc["subject"])
        expires = v.timestamp(doc["expires_at"], "grant.expires_at")
        await _require_owner_admin(ctx, channel, "grant access")
        if expires <= ctx.tx_time:
            raise BadInput("grant.expires_at must be after the transaction time")
        record = {
            "channel": channel,
            "grant_id": make_grant_id(subject),
            "subject": subject,
            "expires_at": doc["expires_at"],
            "granted_by": _me(ctx),
            "granted_at": ctx.tx_time_iso,
            "tx_id": ctx.tx_id,
        }
        await ctx.put_json(ctx.key(GRANT, channel, record["grant_id"]), record)
        ctx.emit("AccessGranted", record)
        return record

    @transaction("RevokeAccess")
    async def revoke_access(self, ctx: Context, channel: str, grant_id: str) -> dict[str, Any]:
        """Withdraw a grant at once."""
        await _require_owner_admin(ctx, channel, "revoke access")
        if ":" not in grant_id:
            raise BadInput('grant_id must be "fingerprint:<hex64>" or "msp:<msp id>"')
        kind, _, value = grant_id.partition(":")
        subject = parse_subject({"kind": kind, "value": value})
        key = ctx.key(GRANT, channel, make_grant_id(subject))
        record = await ctx.get_json(key)
        if record is None:
            raise NotFound(f"channel {channel} has no grant {grant_id}")
        await ctx.delete(key)
        revoked = {**record, "revoked_at": ctx.tx_time_iso, "revoked_by": _me(ctx)}
        revoked["tx_id"] = ctx.tx_id
        ctx.emit("AccessRevoked", revoked)
        return revoked

    @query("CheckAccess")
    async def check_access(
        self, ctx: Context, channel: str, msp_id: str, fingerprint: str
    ) -> dict[str, Any]:
        """Whether a member (MSP id, certificate fingerprint) may use a channel now."""
        record = await _channel(ctx, channel)
        msp = v.msp_id(msp_id, "msp_id")
        if fingerprint:
            v.hex64(fingerprint, "fingerprint")
        now = ctx.tx_time
        answer: dict[str, Any] = {
            "channel": channel,
            "allowed": False,
            "reason": "no_grant",
            "grant": None,
            "checked_at": ctx.tx_time_iso,
        }
        if msp == record["owner_msp"]:
            answer.update(allowed=True, reason="owner")
            return answer
        candidates = []
        if fingerprint:
            candidates.append(make_grant_id({"kind": "fingerprint", "value": fingerprint}))
        candidates.append(make_grant_id({"kind": "msp", "value": msp}))
        expired = None
        for gid in candidates:
            grant = await ctx.get_json(ctx.key(GRANT, channel, gid))
            if grant is None:
                continue
            if _active(grant, now):
                answer.update(allowed=True, reason="grant", grant=grant)
                return answer
            expired = expired or grant
        if expired is not None:
            answer.update(reason="expired", grant=expired)
        return answer

    @query("ListGrants")
    async def list_grants(self, ctx: Context, channel: str) -> dict[str, Any]:
        """Every grant of a channel, with whether it is active now."""
        record = await _channel(ctx, channel)
        now = ctx.tx_time
        grants = [
            {**grant, "active": _active(grant, now)} async for _, grant in ctx.scan(GRANT, channel)
        ]
        return {"channel": channel, "owner_msp": record["owner_msp"], "grants": grants}

    @query("GetChannel")
    async def get_channel(self, ctx: Context, channel: str) -> dict[str, Any]:
        """The registration of one channel."""
        return await _channel(ctx, channel)
