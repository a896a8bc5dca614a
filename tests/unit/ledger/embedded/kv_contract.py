"""A contract exercising the stub API the embedded ledger implements (unit tests only)."""

from __future__ import annotations

import os
from typing import Any

from chaincode.runtime import Context, Contract, query, transaction


async def _keys(iterator: Any) -> list[str]:
    keys = []
    async for kv in iterator:
        keys.append(kv.key)
    return keys


class KvContract(Contract):
    name = "kv"

    @transaction("Put")
    async def put(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @transaction("Delete")
    async def delete(self, ctx: Context, key: str) -> None:
        await ctx.stub.delete_state(key)

    @query("Get")
    async def get(self, ctx: Context, key: str) -> str:
        return bytes(await ctx.stub.get_state(key)).decode()

    @transaction("PutItem")
    async def put_item(self, ctx: Context, kind: str, item: str, value: str) -> None:
        await ctx.put_json(ctx.key(kind, item), {"v": value})

    @query("Scan")
    async def scan(self, ctx: Context, kind: str) -> list[list[Any]]:
        return [[ctx.stub.split_composite_key(k)[1][0], v["v"]] async for k, v in ctx.scan(kind)]

    @transaction("CountItems")
    async def count_items(self, ctx: Context, kind: str) -> int:
        """Range-reads every item of ``kind`` and records the count (phantom-read test)."""
        count = len([k async for k, _ in ctx.scan(kind)])
        await ctx.put_json(ctx.key("count", kind), {"n": count})
        return count

    @query("Range")
    async def range(self, ctx: Context, start: str, end: str) -> list[str]:
        return await _keys(await ctx.stub.get_state_by_range(start, end))

    @query("Page")
    async def page(self, ctx: Context, start: str, end: str, size: str, bookmark: str) -> Any:
        iterator = await ctx.stub.get_state_by_range_with_pagination(
            start, end, int(size), bookmark
        )
        keys = await _keys(iterator)
        return {"keys": keys, "bookmark": iterator.metadata.bookmark}

    @transaction("PutThenPage")
    async def put_then_page(self, ctx: Context, key: str) -> None:
        await ctx.stub.put_state(key, b"x")
        await ctx.stub.get_state_by_range_with_pagination("", "", 10, "")

    @transaction("PutThenGet")
    async def put_then_get(self, ctx: Context, key: str, value: str) -> str:
        await ctx.stub.put_state(key, value.encode())
        return bytes(await ctx.stub.get_state(key)).decode()

    @query("Facts")
    async def facts(self, ctx: Context) -> dict[str, Any]:
        return {
            "tx_id": ctx.tx_id,
            "channel": ctx.channel_id,
            "time": ctx.tx_time_iso,
            "msp_id": ctx.identity.msp_id,
            "role": ctx.identity.role,
            "transient": sorted(ctx.stub.get_transient()),
        }

    @transaction("Emit")
    async def emit(self, ctx: Context, name: str, value: str) -> None:
        await ctx.stub.put_state(f"event-{value}", value.encode())
        ctx.emit(name, {"value": value})

    @transaction("Random")
    async def random(self, ctx: Context) -> str:
        """Non-deterministic on purpose: each endorser computes a different result."""
        value = os.urandom(8).hex()
        await ctx.stub.put_state("random", value.encode())
        return value

    @query("RichQuery")
    async def rich_query(self, ctx: Context) -> None:
        await ctx.stub.get_query_result('{"selector": {}}')


CONTRACTS = [KvContract]
