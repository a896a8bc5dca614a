"""A small contract module for runtime tests (also served by ``python -m chaincode.runtime``)."""

from __future__ import annotations

from chaincode.runtime import Conflict, Context, Contract, query, transaction


class Kv(Contract):
    name = "kv"

    @transaction("Put")
    async def put(self, ctx, key: str, value: str) -> dict:
        """Store ``value`` at ``key`` once; emits ``Stored``."""
        k = ctx.key("kv", key)
        if await ctx.get_json(k) is not None:
            raise Conflict(f"key {key} is already set")
        await ctx.put_json(k, {"value": value, "by": ctx.identity.msp_id, "at": ctx.tx_time_iso})
        ctx.emit("Stored", {"key": key, "tx": ctx.tx_id})
        return {"key": key}

    @query("Get")
    async def get(self, ctx: Context, key: str) -> dict | None:
        return await ctx.get_json(ctx.key("kv", key))

    @transaction("Fail")
    async def fail(self, ctx) -> None:
        ctx.emit("NeverSent", {})
        raise Conflict("refused on purpose")

    @query("Keys")
    async def keys(self, ctx) -> list[str]:
        return [value["value"] async for _, value in ctx.scan("kv")]


CONTRACTS = [Kv]
