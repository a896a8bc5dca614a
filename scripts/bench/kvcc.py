"""The benchmarks' own key-value chaincode: ``Put(key, value)`` and ``Get(key)``.

What ``ledger_workload.py`` drives on both ledgers (loaded by the embedded
ledger as ``kvcc:CONTRACTS``, deployed on Fabric from this file as chaincode
``benchkv``). The benchmarks keep it here so that they import nothing from
``tests/``.
"""

from __future__ import annotations

from chaincode.runtime import Context, Contract, NotFound, query, transaction

CHAINCODE = "benchkv"


class KeyValue(Contract):
    name = CHAINCODE

    @transaction("Put")
    async def put(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @query("Get")
    async def get(self, ctx: Context, key: str) -> bytes:
        raw = await ctx.stub.get_state(key)
        if not raw:
            raise NotFound(f"no value at key {key!r}")
        return bytes(raw)


CONTRACTS = [KeyValue]
