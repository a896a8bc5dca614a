"""Issue 6 scenarios through the project's Fabric client, on both ledgers.

Each test runs on the embedded ledger (always) and on the real native network
(marked ``fabric``; skipped with the reason when no Fabric install is found):
anchor three batches in a chain; a forked batch is refused; an anchor endorsed
by one org alone does not commit; a member of Org2 cannot accept a settlement
addressed to a member of Org3; an expired grant denies access; events arrive
for each transition; bad input is refused with a message and writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.ledger.errors import EndorseError, EvaluateError
from gateway.ledger.gateway import Gateway
from tests.integration.chaincode.cc_fabric_support import (
    CHAINCODE,
    CHAINCODE_PATH,
    connect,
    identity_of,
    rfc3339,
    signed_batch,
)


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree4(tag: str) -> tuple[list[bytes], bytes]:
    leaves = [_leaf(f"{tag}-{i}".encode()) for i in range(4)]
    return leaves, _node(_node(leaves[0], leaves[1]), _node(leaves[2], leaves[3]))


@dataclasses.dataclass
class CcLedger:
    kind: str
    channel: str
    enroll: Callable[[str, str, str], Path]  # (org, name, role) -> MSP folder
    gateway: Callable[[Path, str], Gateway]
    height: Callable[[], int] | None = None  # embedded only


_FABRIC_PEOPLE: dict[str, tuple[Path, str, str]] = {}
PEOPLE = {
    "gw": ("Org1", "admin"),
    "buyer": ("Org2", "member"),
    "org2_other": ("Org2", "member"),
    "seller": ("Org3", "member"),
}
MSP = {"Org1": "Org1MSP", "Org2": "Org2MSP", "Org3": "Org3MSP"}


async def _embedded(tmp_path: Path) -> AsyncIterator[CcLedger]:
    from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
    from gateway.ledger.embedded_client import embedded_gateway

    ledger = EmbeddedLedger.open(
        EmbeddedConfig(
            root=tmp_path / "embedded",
            chaincodes={CHAINCODE: "chaincode.anchorline:CONTRACTS"},
            batch_timeout_s=0.02,
        )
    )
    try:
        yield CcLedger(
            kind="embedded",
            channel=ledger.config.channel,
            enroll=ledger.ca.enroll,
            gateway=lambda msp_dir, org: embedded_gateway(ledger, msp_dir, org=org),
            height=lambda: ledger.height,
        )
    finally:
        await ledger.close()


async def _fabric(request: pytest.FixtureRequest) -> AsyncIterator[CcLedger]:
    profile = request.getfixturevalue("fabric_network")
    request.getfixturevalue("deploy_chaincode")(CHAINCODE, CHAINCODE_PATH)
    enroll = request.getfixturevalue("enroll_identity")
    yield CcLedger(
        kind="fabric",
        channel=profile.channel,
        enroll=lambda org, name, role: enroll(profile, org, name, role),
        gateway=lambda msp_dir, org: connect(profile, msp_dir, org),
    )


@pytest.fixture(params=["embedded", pytest.param("fabric", marks=pytest.mark.fabric)])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CcLedger]:
    source = _embedded(tmp_path) if request.param == "embedded" else _fabric(request)
    async for item in source:
        yield item


@pytest.fixture
def people(ledger: CcLedger) -> dict[str, tuple[Path, str, str]]:
    """The gateway (an Org1 admin), a buyer and another member of Org2, a seller of Org3."""
    if ledger.kind == "fabric" and _FABRIC_PEOPLE:
        return _FABRIC_PEOPLE  # enrolling on Fabric CA takes about a second each
    tag = uuid.uuid4().hex[:6]
    out = {
        who: (ledger.enroll(org, f"sc-{who}-{tag}", role), org, MSP[org])
        for who, (org, role) in PEOPLE.items()
    }
    if ledger.kind == "fabric":
        _FABRIC_PEOPLE.update(out)
    return out


@pytest.fixture
async def gws(
    ledger: CcLedger, people: dict[str, tuple[Path, str, str]]
) -> AsyncIterator[dict[str, Gateway]]:
    opened = {who: ledger.gateway(d, org) for who, (d, org, _) in people.items()}
    yield opened
    for gw in opened.values():
        await gw.close()


def contract(gws: dict[str, Gateway], who: str, name: str, ledger: CcLedger) -> Any:
    return gws[who].network(ledger.channel).contract(CHAINCODE, name)


async def read_on(view: Any, msp: str, ready: Callable[[Any], bool], *call: str) -> Any:
    """Evaluate ``call`` on ``msp``'s peer until ``ready`` holds (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = json.loads(await view.evaluate(*call, target_orgs=[msp]))
            if ready(answer):
                return answer
        except EvaluateError:
            pass
        assert time.monotonic() < deadline, f"{call} never became ready on {msp}"
        await asyncio.sleep(0.1)


async def anchor_chain(gws, people, ledger, channel, count=3):
    d, _, msp = people["gw"]
    anchor = contract(gws, "gw", "anchor", ledger)
    prev, batches, results = "", [], []
    for i in range(count):
        leaves, root = tree4(f"{channel}-{i}")
        batch = {
            "batch_id": f"{channel}:{i}",
            "channel": channel,
            "root": root.hex(),
            "leaf_count": 4,
            "first_seq": 1 + 4 * i,
            "last_seq": 4 + 4 * i,
            "prev_root": prev,
        }
        started = time.perf_counter()
        results.append(await anchor.submit("AnchorBatch", signed_batch(d, msp, batch), timeout=30))
        took = (time.perf_counter() - started) * 1000
        print(f"[{ledger.kind}] AnchorBatch submit end to end: {took:.0f} ms")
        batches.append((batch, leaves))
        prev = root.hex()
    return batches, results


async def test_three_batches_chain_and_a_fork_is_refused(gws, people, ledger):
    channel = f"sc-{uuid.uuid4().hex[:8]}"
    batches, results = await anchor_chain(gws, people, ledger, channel)
    records = [json.loads(r.result) for r in results]
    assert [r["height"] for r in records] == [0, 1, 2]
    # Read back from another org's peer, which commits the block on its own schedule.
    org3_view = contract(gws, "seller", "anchor", ledger)
    head = await read_on(org3_view, "Org3MSP", lambda h: h["height"] == 2, "GetHead", channel)
    assert head["batch_id"] == f"{channel}:2" and head["height"] == 2
    assert head["root"] == batches[2][0]["root"]

    d, _, msp = people["gw"]
    anchor = contract(gws, "gw", "anchor", ledger)
    fork = {**batches[2][0], "batch_id": f"{channel}:fork", "prev_root": batches[1][0]["root"]}
    with pytest.raises(EndorseError) as caught:
        await anchor.submit("AnchorBatch", signed_batch(d, msp, fork), timeout=30)
    assert f"conflict: prev_root {batches[1][0]['root']} is not the head" in (
        caught.value.chaincode_message or ""
    )
    # Idempotent: the identical batch again returns the stored record.
    again = await anchor.submit("AnchorBatch", signed_batch(d, msp, batches[1][0]), timeout=30)
    assert json.loads(again.result) == records[1]

    leaves = batches[1][1]
    proof = [leaves[1].hex(), _node(leaves[2], leaves[3]).hex()]
    answer = json.loads(
        await org3_view.evaluate(
            "VerifyInclusion", f"{channel}:1", leaves[0].hex(), "0", json.dumps(proof)
        )
    )
    assert answer["included"] is True
    wrong = json.loads(
        await org3_view.evaluate(
            "VerifyInclusion", f"{channel}:1", leaves[0].hex(), "1", json.dumps(proof)
        )
    )
    assert wrong["included"] is False


async def test_an_anchor_endorsed_by_one_org_alone_does_not_commit(gws, people, ledger):
    channel = f"pol-{uuid.uuid4().hex[:8]}"
    d, _, msp = people["gw"]
    _, root = tree4(channel)
    batch = {
        "batch_id": f"{channel}:0",
        "channel": channel,
        "root": root.hex(),
        "leaf_count": 4,
        "first_seq": 1,
        "last_seq": 4,
        "prev_root": "",
    }
    anchor = contract(gws, "gw", "anchor", ledger)
    proposal = anchor.new_proposal(
        "AnchorBatch", signed_batch(d, msp, batch), endorsing_orgs=["Org1MSP"]
    )
    transaction = await proposal.endorse(timeout=30)
    status = await (await transaction.submit(timeout=30)).status(timeout=30)
    assert not status.successful
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    with pytest.raises(EvaluateError) as caught:
        await anchor.evaluate("GetBatch", f"{channel}:0")
    assert (caught.value.chaincode_message or "").endswith(f"batch {channel}:0 is not anchored")


async def _events(network, start_block: int, count: int) -> list[Any]:
    out = []
    async with network.chaincode_events(CHAINCODE, start_block=start_block) as stream:
        while len(out) < count:
            out.append(await asyncio.wait_for(stream.__anext__(), 20))
    return out


async def test_settlement_across_orgs_with_an_event_per_transition(gws, people, ledger):
    channel = f"st-{uuid.uuid4().hex[:8]}"
    batches, _ = await anchor_chain(gws, people, ledger, channel, count=1)
    batch, leaves = batches[0]
    buyer = identity_of(people["buyer"][0], "Org2MSP")
    seller = identity_of(people["seller"][0], "Org3MSP")
    proposal = {
        "settlement_id": f"{channel}-s1",
        "buyer": buyer,
        "seller": seller,
        "amount": "99.95",
        "asset": "lot-1",
        "event": {
            "batch_id": batch["batch_id"],
            "leaf_index": 2,
            "leaf_hash": leaves[2].hex(),
            "proof": [leaves[3].hex(), _node(leaves[0], leaves[1]).hex()],
        },
        "expires_at": rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
    }
    by_buyer = contract(gws, "buyer", "settlement", ledger)
    proposed = await by_buyer.submit("Propose", json.dumps(proposal), timeout=30)
    sid = proposal["settlement_id"]

    # The counterparty is the seller, a member of Org3: members of Org2 are refused.
    for who in ("org2_other", "buyer"):
        with pytest.raises(EndorseError) as caught:
            await contract(gws, who, "settlement", ledger).submit("Accept", sid, timeout=30)
        assert (caught.value.chaincode_message or "").endswith(
            f"forbidden: only the seller of settlement {sid} may accept it"
        )
    by_seller = contract(gws, "seller", "settlement", ledger)
    accepted = await by_seller.submit("Accept", sid, timeout=30)
    settled = await by_buyer.submit("Settle", sid, timeout=30)
    # Read on the peer that reported the commit (another org's peer may lag a block).
    final = json.loads(await by_buyer.evaluate("GetSettlement", sid))
    assert final["state"] == "Settled"
    assert [h["by"] for h in final["history"]] == [buyer, seller, buyer]

    network = gws["gw"].network(ledger.channel)
    # The refused Accepts left no trace: exactly three events, one per transition.
    events = await _events(network, proposed.block_number, 3)
    assert [(e.event_name, e.transaction_id) for e in events] == [
        ("SettlementProposed", proposed.transaction_id),
        ("SettlementAccepted", accepted.transaction_id),
        ("SettlementSettled", settled.transaction_id),
    ]


async def test_an_expired_grant_denies_access_and_revocation_is_an_event(gws, people, ledger):
    channel = f"gr-{uuid.uuid4().hex[:8]}"
    access = contract(gws, "gw", "access", ledger)
    await access.submit("RegisterChannel", channel, timeout=30)
    buyer = identity_of(people["buyer"][0], "Org2MSP")
    seller = identity_of(people["seller"][0], "Org3MSP")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    short = {"channel": channel, "subject": {"kind": "fingerprint", "value": buyer["fingerprint"]}}
    await access.submit("GrantAccess", json.dumps({**short, "expires_at": rfc3339(soon)}))
    later = rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    long = {"channel": channel, "subject": {"kind": "msp", "value": "Org3MSP"}, "expires_at": later}
    await access.submit("GrantAccess", json.dumps(long))

    async def check(who: dict[str, str]) -> dict[str, Any]:
        raw = await contract(gws, "buyer", "access", ledger).evaluate(
            "CheckAccess", channel, who["msp_id"], who["fingerprint"]
        )
        return json.loads(raw)

    assert (await check(buyer))["allowed"] is True
    await asyncio.sleep(max(0.0, (soon - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
    expired = await check(buyer)
    assert (expired["allowed"], expired["reason"]) == (False, "expired")

    assert (await check(seller))["allowed"] is True
    revoked = await access.submit("RevokeAccess", channel, "msp:Org3MSP", timeout=30)
    assert (await check(seller))["reason"] == "no_grant"
    network = gws["gw"].network(ledger.channel)
    (event,) = await _events(network, revoked.block_number, 1)
    assert event.event_name == "AccessRevoked" and event.transaction_id == revoked.transaction_id


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        ("anchor:Nope", [], "bad_input: unknown function 'anchor:Nope'"),
        ("anchor:GetBatch", ["a", "b"], "bad_input: anchor:GetBatch takes 1 argument(s), got 2"),
        (
            "anchor:VerifyInclusion",
            ["b", "XYZ", "0", "[]"],
            "bad_input: leaf_hash must be 64 lower-case hex characters",
        ),
        ("anchor:GetHead", ["x" * 70000], "bad_input: argument channel of anchor:GetHead is"),
    ],
)
async def test_bad_input_is_refused_with_a_message(gws, ledger, function, args, message):
    raw = gws["gw"].network(ledger.channel).contract(CHAINCODE)
    before = ledger.height() if ledger.height else None
    with pytest.raises(EndorseError) as caught:
        await raw.submit(function, *args, timeout=30)
    assert message in (caught.value.chaincode_message or "")
    if before is not None:  # the embedded ledger shows that nothing was committed
        await asyncio.sleep(0.1)
        assert ledger.height() == before


async def test_verify_inclusion_of_a_2_pow_20_leaf_batch_on_chain(gws, people, ledger):
    # A leaf of a 2^20-leaf tree needs only its 20 siblings: build the root from them.
    channel = f"big-{uuid.uuid4().hex[:8]}"
    index = 0b1011_0010_1110_0001_0110
    leaf = _leaf(b"the event")
    siblings = [hashlib.sha256(bytes([i])).digest() for i in range(20)]
    node = leaf
    for level, sibling in enumerate(siblings):
        node = _node(sibling, node) if (index >> level) & 1 else _node(node, sibling)
    d, _, msp = people["gw"]
    batch = {
        "batch_id": f"{channel}/0",
        "channel": channel,
        "root": node.hex(),
        "leaf_count": 2**20,
        "first_seq": 1,
        "last_seq": 2**20,
        "prev_root": "0" * 64,
    }
    anchor = contract(gws, "gw", "anchor", ledger)
    await anchor.submit("AnchorBatch", signed_batch(d, msp, batch), timeout=30)
    proof = json.dumps([s.hex() for s in siblings])
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        raw = await anchor.evaluate(
            "VerifyInclusion", batch["batch_id"], leaf.hex(), str(index), proof
        )
        timings.append(time.perf_counter() - started)
        assert json.loads(raw)["included"] is True
    timings.sort()
    print(f"[{ledger.kind}] VerifyInclusion 2^20 evaluate: median {timings[10] * 1000:.1f} ms")
    wrong = await anchor.evaluate(
        "VerifyInclusion", batch["batch_id"], leaf.hex(), str(index + 1), proof
    )
    assert json.loads(wrong)["included"] is False
