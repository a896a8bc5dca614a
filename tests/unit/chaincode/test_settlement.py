"""Settlement contract: every transition, every forbidden one, parties from the creator."""

from __future__ import annotations

import json

import pytest

from chaincode.anchorline import CONTRACTS
from tests.unit.chaincode.ccfakes import FakeLedger, issue, make_ca, sign_batch
from tests.unit.chaincode.ccmerkle import leaf_hash, mth, path

LEAVES = [f"bid-{i}".encode() for i in range(6)]
INDEX = 3


@pytest.fixture(scope="module")
def ids():
    org1, org2, org3 = make_ca("Org1"), make_ca("Org2"), make_ca("Org3")
    return {
        "gw": issue(org1, "Org1MSP", "gateway", role="admin"),
        "buyer": issue(org2, "Org2MSP", "bob", role="member"),
        "buyer_peer": issue(org2, "Org2MSP", "bob2", role="member"),  # same org, other member
        "seller": issue(org3, "Org3MSP", "sue", role="member"),
        "outsider": issue(org1, "Org1MSP", "olga", role="admin"),
    }


def party(identity):
    return {"msp_id": identity.msp_id, "fingerprint": identity.fingerprint}


@pytest.fixture
async def ledger(ids):
    ledger = FakeLedger(CONTRACTS)
    batch = sign_batch(
        ids["gw"],
        {
            "batch_id": "auction-1:1",
            "channel": "auction-1",
            "root": mth(LEAVES).hex(),
            "leaf_count": len(LEAVES),
            "first_seq": 1,
            "last_seq": len(LEAVES),
            "prev_root": "",
        },
    )
    assert (await ledger.call(ids["gw"], "anchor:AnchorBatch", json.dumps(batch))).ok
    ledger.events.clear()
    return ledger


def proposal(ids, settlement_id="s1", **over):
    doc = {
        "settlement_id": settlement_id,
        "buyer": party(ids["buyer"]),
        "seller": party(ids["seller"]),
        "amount": "125.50",
        "asset": "lot-17",
        "event": {
            "batch_id": "auction-1:1",
            "leaf_index": INDEX,
            "leaf_hash": leaf_hash(LEAVES[INDEX]).hex(),
            "proof": [h.hex() for h in path(INDEX, LEAVES)],
        },
        "expires_at": "2026-11-25T13:00:00Z",
    }
    doc.update(over)
    return json.dumps(doc)


async def propose(ledger, ids, by="seller", **over):
    return await ledger.call(ids[by], "settlement:Propose", proposal(ids, **over))


async def act(ledger, ids, who, verb, settlement_id="s1"):
    return await ledger.call(ids[who], f"settlement:{verb}", settlement_id)


async def test_propose_accept_settle_with_an_event_for_each(ledger, ids):
    proposed = await propose(ledger, ids)
    assert proposed.ok, proposed.message
    record = proposed.json()
    assert record["state"] == "Proposed" and record["proposed_by"] == "seller"
    assert record["event"] == {
        "batch_id": "auction-1:1",
        "channel": "auction-1",
        "leaf_index": INDEX,
        "leaf_hash": leaf_hash(LEAVES[INDEX]).hex(),
        "root": mth(LEAVES).hex(),
    }
    ledger.advance(minutes=1)
    accepted = await act(ledger, ids, "buyer", "Accept")
    assert accepted.ok, accepted.message
    ledger.advance(minutes=1)
    settled = await act(ledger, ids, "seller", "Settle")
    assert settled.ok, settled.message
    final = (await act(ledger, ids, "outsider", "GetSettlement")).json()
    assert final["state"] == "Settled"
    assert [(h["state"], h["by"]["msp_id"], h["at"]) for h in final["history"]] == [
        ("Proposed", "Org3MSP", "2026-11-25T12:00:00.000000Z"),
        ("Accepted", "Org2MSP", "2026-11-25T12:01:00.000000Z"),
        ("Settled", "Org3MSP", "2026-11-25T12:02:00.000000Z"),
    ]
    assert [(name, p["state"], p["previous_state"]) for name, p in ledger.events] == [
        ("SettlementProposed", "Proposed", None),
        ("SettlementAccepted", "Accepted", "Proposed"),
        ("SettlementSettled", "Settled", "Accepted"),
    ]
    assert ledger.events[1][1]["by"] == party(ids["buyer"])
    assert ledger.events[2][1]["tx_id"] == settled.json()["history"][-1]["tx_id"]


async def test_the_buyer_may_propose_and_then_the_seller_accepts(ledger, ids):
    assert (await propose(ledger, ids, by="buyer")).ok
    assert (await act(ledger, ids, "buyer", "Accept")).message == (
        "forbidden: only the seller of settlement s1 may accept it"
    )
    assert (await act(ledger, ids, "seller", "Accept")).ok


async def test_a_member_of_org2_cannot_accept_a_settlement_addressed_to_org3(ledger, ids):
    # Seller (Org3) is the counterparty here: the buyer proposes, Org2's other member tries.
    assert (await propose(ledger, ids, by="buyer")).ok
    before = dict(ledger.state)
    for who in ("buyer_peer", "outsider", "buyer"):
        result = await act(ledger, ids, who, "Accept")
        assert result.message == "forbidden: only the seller of settlement s1 may accept it"
    assert ledger.state == before


async def test_the_proposer_cannot_accept_its_own_proposal(ledger, ids):
    assert (await propose(ledger, ids)).ok
    assert (await act(ledger, ids, "seller", "Accept")).message == (
        "forbidden: only the buyer of settlement s1 may accept it"
    )


async def test_a_non_party_cannot_propose_settle_or_cancel(ledger, ids):
    assert (await propose(ledger, ids, by="outsider")).message == (
        "forbidden: only the buyer or the seller named in the proposal may propose it"
    )
    # Same MSP as the buyer, different certificate: not the buyer.
    assert (await propose(ledger, ids, by="buyer_peer")).message.startswith("forbidden:")
    assert (await propose(ledger, ids)).ok
    assert (await act(ledger, ids, "buyer", "Accept")).ok
    for verb in ("Settle", "Cancel"):
        result = await act(ledger, ids, "outsider", verb)
        assert result.message == (
            f"forbidden: only the buyer or the seller of settlement s1 may {verb.lower()} it"
        )


@pytest.mark.parametrize("who", ["buyer", "seller"])
async def test_either_party_may_cancel_while_proposed_or_accepted(ledger, ids, who):
    assert (await propose(ledger, ids)).ok
    cancelled = await act(ledger, ids, who, "Cancel")
    assert cancelled.json()["state"] == "Cancelled"
    assert (await propose(ledger, ids, settlement_id="s2")).ok
    assert (await act(ledger, ids, "buyer", "Accept", "s2")).ok
    assert (await act(ledger, ids, who, "Cancel", "s2")).json()["state"] == "Cancelled"
    assert [p["previous_state"] for n, p in ledger.events if n == "SettlementCancelled"] == [
        "Proposed",
        "Accepted",
    ]


@pytest.mark.parametrize(
    ("setup", "verb", "message"),
    [
        ([], "Settle", "settlement s1 is Proposed and cannot be settled (only from Accepted)"),
        (
            ["Accept"],
            "Accept",
            "settlement s1 is Accepted and cannot be accepted (only from Proposed)",
        ),
        (["Accept", "Settle"], "Settle", "settlement s1 is Settled and cannot be settled"),
        (["Accept", "Settle"], "Cancel", "settlement s1 is Settled and cannot be cancelled"),
        (["Accept", "Settle"], "Accept", "settlement s1 is Settled and cannot be accepted"),
        (["Cancel"], "Accept", "settlement s1 is Cancelled and cannot be accepted"),
        (["Cancel"], "Settle", "settlement s1 is Cancelled and cannot be settled"),
        (["Cancel"], "Cancel", "settlement s1 is Cancelled and cannot be cancelled"),
    ],
)
async def test_forbidden_transitions_are_conflicts_and_change_nothing(
    ledger, ids, setup, verb, message
):
    assert (await propose(ledger, ids)).ok
    actors = {"Accept": "buyer", "Settle": "seller", "Cancel": "seller"}
    for step in setup:
        assert (await act(ledger, ids, actors[step], step)).ok
    before = dict(ledger.state)
    result = await act(ledger, ids, actors[verb], verb)
    assert result.message.startswith("conflict: " + message), result.message
    assert ledger.state == before and result.event is None


async def test_settled_and_cancelled_are_final_even_after_expiry(ledger, ids):
    assert (await propose(ledger, ids)).ok
    assert (await act(ledger, ids, "buyer", "Accept")).ok
    assert (await act(ledger, ids, "seller", "Settle")).ok
    ledger.advance(hours=2)
    assert (await act(ledger, ids, "outsider", "Expire")).message.startswith(
        "conflict: settlement s1 is Settled and cannot be expired"
    )


async def test_expiry(ledger, ids):
    assert (await propose(ledger, ids)).ok
    early = await act(ledger, ids, "outsider", "Expire")
    assert early.message == "conflict: settlement s1 expires at 2026-11-25T13:00:00Z, not yet"
    ledger.advance(hours=1)  # exactly expires_at: expired
    for who, verb in (("buyer", "Accept"), ("seller", "Cancel")):
        result = await act(ledger, ids, who, verb)
        assert result.message == (
            "expired: settlement s1 expired at 2026-11-25T13:00:00Z; call settlement:Expire"
        )
    expired = await act(ledger, ids, "outsider", "Expire")
    assert expired.json()["state"] == "Expired"
    assert ledger.events[-1][0] == "SettlementExpired"
    assert ledger.events[-1][1]["by"] == party(ids["outsider"])


async def test_an_accepted_settlement_expires_too(ledger, ids):
    assert (await propose(ledger, ids)).ok
    assert (await act(ledger, ids, "buyer", "Accept")).ok
    ledger.advance(hours=3)
    assert (await act(ledger, ids, "seller", "Settle")).message.startswith("expired:")
    assert (await act(ledger, ids, "buyer", "Expire")).json()["history"][-1]["state"] == "Expired"


async def test_a_proof_that_does_not_reach_the_anchored_root_is_refused(ledger, ids):
    wrong = {
        "batch_id": "auction-1:1",
        "leaf_index": INDEX,
        "leaf_hash": leaf_hash(b"a bid that never happened").hex(),
        "proof": [h.hex() for h in path(INDEX, LEAVES)],
    }
    result = await propose(ledger, ids, event=wrong)
    assert result.message.startswith(
        "conflict: the event is not included in batch auction-1:1: the proof leads to a "
        "different root (anchored root "
    )
    short = {**wrong, "leaf_hash": leaf_hash(LEAVES[INDEX]).hex(), "proof": []}
    assert (
        "the proof is shorter than a tree of 6 leaves needs"
        in (await propose(ledger, ids, event=short)).message
    )
    missing = {**wrong, "batch_id": "auction-1:9"}
    assert (await propose(ledger, ids, event=missing)).message == (
        "conflict: event batch auction-1:9 is not anchored"
    )
    assert (await act(ledger, ids, "buyer", "GetSettlement")).message == (
        "not_found: settlement s1 does not exist"
    )


async def test_a_settlement_id_is_used_once(ledger, ids):
    assert (await propose(ledger, ids)).ok
    assert (await propose(ledger, ids, by="buyer")).message == (
        "conflict: settlement s1 already exists"
    )


def _party_override(ids, **kw):
    return {"buyer": {**party(ids["buyer"]), **kw}}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"amount": "0"}, "amount must be greater than zero"),
        ({"amount": "0.000"}, "amount must be greater than zero"),
        ({"amount": "1e5"}, "amount must be decimal text"),
        ({"amount": 12}, "amount must be decimal text"),
        ({"amount": "1.123456789"}, "amount must be decimal text"),
        ({"amount": "01"}, "amount must be decimal text"),
        ({"asset": ""}, "asset must be a non-empty string of at most 256"),
        ({"asset": "x" * 257}, "asset must be a non-empty string of at most 256"),
        ({"asset": "a\nb"}, "asset may not contain control characters"),
        ({"expires_at": "tomorrow"}, "expires_at must be an RFC 3339 UTC time"),
        ({"expires_at": "2026-02-30T00:00:00Z"}, "expires_at is not a valid date"),
        ({"expires_at": "2026-11-25T12:00:00Z"}, "expires_at must be after the transaction time"),
        ({"settlement_id": "s 1"}, "settlement_id must be 1-128 characters"),
        ({"buyer": {"msp_id": "Org2MSP"}}, "buyer must be an object with exactly msp_id"),
        ({"seller": "Org3MSP"}, "seller must be an object with exactly msp_id"),
        ({"event": {"batch_id": "x"}}, "event must be an object with exactly batch_id"),
        ({"surprise": 1}, "proposal has unknown field(s): surprise"),
    ],
)
async def test_malformed_proposals_are_refused(ledger, ids, over, message):
    result = await propose(ledger, ids, **over)
    assert result.message.startswith("bad_input: " + message), result.message
    assert result.writes == {}


async def test_malformed_party_and_event_fields_are_refused(ledger, ids):
    result = await propose(ledger, ids, **_party_override(ids, fingerprint="XY" * 32))
    assert result.message.startswith("bad_input: buyer.fingerprint must be 64 lower-case hex")
    result = await propose(ledger, ids, **_party_override(ids, msp_id="Org 2"))
    assert result.message.startswith("bad_input: buyer.msp_id must be an MSP id")
    same = await propose(ledger, ids, seller=party(ids["buyer"]), by="buyer")
    assert same.message == "bad_input: buyer and seller must be different identities"
    bad_proof = {
        "batch_id": "auction-1:1",
        "leaf_index": -1,
        "leaf_hash": "00" * 32,
        "proof": [],
    }
    assert (await propose(ledger, ids, event=bad_proof)).message.startswith(
        "bad_input: event.leaf_index must be between 0"
    )


async def test_unknown_settlements_are_not_found(ledger, ids):
    for verb in ("Accept", "Settle", "Cancel", "Expire", "GetSettlement"):
        assert (await act(ledger, ids, "buyer", verb, "nope")).message == (
            "not_found: settlement nope does not exist"
        )
