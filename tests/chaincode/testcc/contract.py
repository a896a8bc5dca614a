"""The test chaincode's one contract."""

from __future__ import annotations

from typing import Any

from chaincode.runtime import ChaincodeError, Context, Contract, NotFound, query, transaction


class KeyValueContract(Contract):
    name = "testcc"

    @transaction("Put")
    async def put(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @query("Get")
    async def get(self, ctx: Context, key: str) -> bytes:
        raw = await ctx.stub.get_state(key)
        if not raw:
            raise NotFound(f"no value at key {key!r}")
        return bytes(raw)

    @transaction("Fail")
    async def fail(self, ctx: Context, message: str) -> None:
        raise ChaincodeError("bad_input", message)

    @transaction("PutWithEvent")
    async def put_with_event(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())
        ctx.emit("put", {"key": key, "value": value})

    @transaction("Increment")
    async def increment(self, ctx: Context, key: str) -> str:
        # Reads then writes the key: two concurrent calls conflict (MVCC), as in Fabric.
        raw = await ctx.stub.get_state(key)
        value = int(bytes(raw).decode() or "0") + 1
        await ctx.stub.put_state(key, str(value).encode())
        return str(value)

    @query("Creator")
    async def creator(self, ctx: Context) -> dict[str, Any]:
        return {"msp_id": ctx.identity.msp_id, "fingerprint": ctx.identity.fingerprint}


CONTRACTS = [KeyValueContract]
