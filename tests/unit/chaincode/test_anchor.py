"""Anchor contract rules: chain head, idempotency, signatures, queries, inclusion."""

from __future__ import annotations

import json

import pytest

from chaincode.anchorline import CONTRACTS
from tests.unit.chaincode.ccfakes import FakeLedger, issue, make_ca, sign_batch
from tests.unit.chaincode.ccmerkle import leaf_hash, mth, path

ZERO = "0" * 64


@pytest.fixture(scope="module")
def ids():
    org1, org2 = make_ca("Org1"), make_ca("Org2")
    return {
        "gw": issue(org1, "Org1MSP", "gateway", role="admin"),
        "gw2": issue(org1, "Org1MSP", "gateway-b", role="admin"),
        "other": issue(org2, "Org2MSP", "gateway", role="admin"),
    }


@pytest.fixture
def ledger():
    return FakeLedger(CONTRACTS)


def leaves_for(batch_no, n):
    return [f"event-{batch_no}-{i}".encode() for i in range(n)]


def make_batch(identity, batch_id, prev_root, first_seq, n, channel="auction-1", **over):
    batch = {
        "batch_id": batch_id,
        "channel": channel,
        "root": over.pop("root", None) or mth(leaves_for(batch_id, n)).hex(),
        "leaf_count": n,
        "first_seq": first_seq,
        "last_seq": first_seq + n - 1,
        "prev_root": prev_root,
    }
    batch.update(over)
    return sign_batch(identity, batch)


async def anchor(ledger, identity, batch):
    return await ledger.call(identity, "anchor:AnchorBatch", json.dumps(batch))


async def chain_of_three(ledger, gw):
    b1 = make_batch(gw, "b1", "", 1, 4)
    b2 = make_batch(gw, "b2", b1["root"], 5, 3)
    b3 = make_batch(gw, "b3", b2["root"], 8, 5)
    results = [await anchor(ledger, gw, b) for b in (b1, b2, b3)]
    assert all(r.ok for r in results), [r.message for r in results]
    return [b1, b2, b3], results


async def test_three_batches_form_a_chain(ledger, ids):
    batches, results = await chain_of_three(ledger, ids["gw"])
    records = [r.json() for r in results]
    assert [r["height"] for r in records] == [0, 1, 2]
    assert records[1]["prev_root"] == records[0]["root"]
    assert records[0]["submitter"] == {"msp_id": "Org1MSP", "fingerprint": ids["gw"].fingerprint}
    assert records[0]["anchored_at"] == "2026-11-25T12:00:00.000000Z"
    assert records[0]["tx_id"] == f"{1:064x}"
    head = (await ledger.call(ids["gw"], "anchor:GetHead", "auction-1")).json()
    assert head == {
        "channel": "auction-1",
        "batch_id": "b3",
        "root": batches[2]["root"],
        "height": 2,
        "last_seq": 12,
        "msp_id": "Org1MSP",
    }
    got = (await ledger.call(ids["gw"], "anchor:GetBatch", "b2")).json()
    assert got == records[1]


async def test_every_anchor_emits_batch_anchored_with_the_record(ledger, ids):
    _, results = await chain_of_three(ledger, ids["gw"])
    assert [e for e, _ in ledger.events] == ["BatchAnchored"] * 3
    assert [p for _, p in ledger.events] == [r.json() for r in results]


async def test_a_first_batch_may_use_64_zeros_as_prev_root(ledger, ids):
    result = await anchor(ledger, ids["gw"], make_batch(ids["gw"], "z1", ZERO, 0, 1))
    assert result.ok and result.json()["height"] == 0


async def test_a_first_batch_with_a_real_prev_root_is_refused(ledger, ids):
    result = await anchor(ledger, ids["gw"], make_batch(ids["gw"], "x", "ab" * 32, 1, 1))
    assert result.message.startswith("conflict: channel auction-1 has no anchored batch")
    assert ledger.state == {}


async def test_a_forked_batch_is_refused(ledger, ids):
    batches, _ = await chain_of_three(ledger, ids["gw"])
    before = dict(ledger.state)
    fork = make_batch(ids["gw"], "b3-fork", batches[1]["root"], 13, 2)
    result = await anchor(ledger, ids["gw"], fork)
    assert result.status == 500
    assert f"prev_root {batches[1]['root']} is not the head of channel auction-1" in result.message
    assert "the head is batch b3 at height 2" in result.message
    assert ledger.state == before
    gap = make_batch(ids["gw"], "b-gap", "", 13, 2)
    assert "is not the head" in (await anchor(ledger, ids["gw"], gap)).message


async def test_a_sequence_gap_is_refused(ledger, ids):
    batches, _ = await chain_of_three(ledger, ids["gw"])
    skip = make_batch(ids["gw"], "b4", batches[2]["root"], 14, 2)
    result = await anchor(ledger, ids["gw"], skip)
    assert result.message == (
        "conflict: first_seq 14 does not follow the head's last_seq 12 on channel auction-1"
    )


async def test_resubmitting_the_identical_batch_is_idempotent(ledger, ids):
    batches, results = await chain_of_three(ledger, ids["gw"])
    before = dict(ledger.state)
    events = len(ledger.events)
    again = await anchor(ledger, ids["gw"], batches[0])
    assert again.ok
    assert again.json() == results[0].json()
    assert again.writes == {} and again.event is None
    assert ledger.state == before and len(ledger.events) == events
    # Re-signed (ECDSA signatures differ each time) but the same fields: still the same batch.
    resigned = make_batch(ids["gw"], "b1", "", 1, 4)
    assert resigned["signature"] != batches[0]["signature"]
    assert (await anchor(ledger, ids["gw"], resigned)).json() == results[0].json()


async def test_the_same_id_with_a_different_root_is_refused(ledger, ids):
    batches, _ = await chain_of_three(ledger, ids["gw"])
    other = make_batch(ids["gw"], "b2", batches[0]["root"], 5, 3, root="cd" * 32)
    result = await anchor(ledger, ids["gw"], other)
    assert result.message == (
        f"conflict: batch b2 is already anchored with root {batches[1]['root']}; "
        "a batch id cannot be reused for a different root"
    )
    moved = make_batch(ids["gw"], "b2", batches[0]["root"], 6, 3, root=batches[1]["root"])
    result = await anchor(ledger, ids["gw"], moved)
    assert result.message == (
        "conflict: batch b2 is already anchored with different fields (first_seq, last_seq)"
    )


async def test_channels_have_independent_chains(ledger, ids):
    await chain_of_three(ledger, ids["gw"])
    other = make_batch(ids["gw"], "c1", "", 1, 2, channel="auction-2")
    assert (await anchor(ledger, ids["gw"], other)).json()["height"] == 0


async def test_another_org_cannot_extend_a_channel_chain(ledger, ids):
    batches, _ = await chain_of_three(ledger, ids["gw"])
    theirs = make_batch(ids["other"], "b4", batches[2]["root"], 13, 1)
    result = await anchor(ledger, ids["other"], theirs)
    assert result.message == (
        "forbidden: channel auction-1 is anchored by Org1MSP; Org2MSP may not extend its chain"
    )
    # Another identity of the same org (a second gateway process) may.
    ours = make_batch(ids["gw2"], "b4", batches[2]["root"], 13, 1)
    assert (await anchor(ledger, ids["gw2"], ours)).ok


async def test_the_signature_must_be_the_submitters_over_the_fields(ledger, ids):
    batch = make_batch(ids["gw"], "s1", "", 1, 2)
    by_other = await anchor(ledger, ids["gw2"], batch)
    assert by_other.message.startswith(
        "forbidden: batch.signature does not verify with the submitter's certificate"
    )
    tampered = {**batch, "leaf_count": 3, "last_seq": 3}
    assert (await anchor(ledger, ids["gw"], tampered)).message.startswith(
        "forbidden: batch.signature does not verify"
    )
    assert ledger.state == {}


def _good():
    return {
        "batch_id": "b1",
        "channel": "auction-1",
        "root": "ab" * 32,
        "leaf_count": 2,
        "first_seq": 1,
        "last_seq": 2,
        "prev_root": "",
        "signature": "MEUCIQ==",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"root": "AB" * 32}, "batch.root must be 64 lower-case hex characters"),
        ({"root": "ab" * 31}, "batch.root must be 64 lower-case hex characters"),
        ({"root": "zz" * 32}, "batch.root must be 64 lower-case hex characters"),
        ({"prev_root": "12"}, "batch.prev_root must be 64 lower-case hex"),
        ({"batch_id": ""}, "batch.batch_id must be 1-128 characters"),
        ({"batch_id": "a\x00b"}, "batch.batch_id must be 1-128 characters"),
        ({"batch_id": "x" * 129}, "batch.batch_id must be 1-128 characters"),
        ({"channel": "a b"}, "batch.channel must be 1-128 characters"),
        ({"leaf_count": 0}, "batch.leaf_count must be between 1 and 4294967296"),
        ({"leaf_count": True}, "batch.leaf_count must be an integer"),
        ({"leaf_count": "2"}, "batch.leaf_count must be an integer"),
        ({"first_seq": -1}, "batch.first_seq must be between 0 and"),
        ({"last_seq": 5}, "batch.last_seq - batch.first_seq + 1 must equal batch.leaf_count"),
        ({"signature": "not base64!"}, "batch.signature must be base64"),
        ({"signature": 12}, "batch.signature must be base64"),
        ({"extra": 1}, "batch has unknown field(s): extra"),
        ({"root": None}, "batch.root must be 64"),
    ],
)
async def test_malformed_batches_are_refused_before_anything_is_read(ledger, ids, change, message):
    result = await anchor(ledger, ids["gw"], {**_good(), **change})
    assert result.status == 500
    assert result.message.startswith("bad_input: " + message), result.message
    assert ledger.state == {} and result.writes == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "bad_input: batch must be a JSON object: Expecting value at position 0"),
        ("[1]", "bad_input: batch must be a JSON object"),
        ('{"batch_id": "b"}', "bad_input: batch is missing field(s): channel, first_seq"),
        ("[" * 5000 + "]" * 5000, "bad_input: argument batch of anchor:AnchorBatch is 10000 bytes"),
        ("[" * 2000 + "]" * 2000, "bad_input: batch is nested too deeply"),
    ],
)
async def test_unparseable_or_oversized_batches_are_refused(ledger, ids, raw, message):
    result = await ledger.call(ids["gw"], "anchor:AnchorBatch", raw)
    assert result.message.startswith(message), result.message
    assert ledger.state == {}


async def test_list_batches_pages_through_the_chain(ledger, ids):
    await chain_of_three(ledger, ids["gw"])

    async def page(start, limit):
        return (
            await ledger.call(ids["gw"], "anchor:ListBatches", "auction-1", start, limit)
        ).json()

    first = await page("0", "2")
    assert [b["batch_id"] for b in first["batches"]] == ["b1", "b2"] and first["next"] == 2
    second = await page("2", "2")
    assert [b["batch_id"] for b in second["batches"]] == ["b3"] and second["next"] is None
    assert (await page("7", "2")) == {"channel": "auction-1", "batches": [], "next": None}
    empty = (await ledger.call(ids["gw"], "anchor:ListBatches", "nothing", "0", "10")).json()
    assert empty == {"channel": "nothing", "batches": [], "next": None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["auction-1", "-1", "2"], "bad_input: from must be a non-negative decimal integer"),
        (["auction-1", "01", "2"], "bad_input: from must be a non-negative decimal integer"),
        (["auction-1", "0", "0"], "bad_input: limit must be between 1 and 100"),
        (["auction-1", "0", "101"], "bad_input: limit must be between 1 and 100"),
        (["auction-1", "0"], "bad_input: anchor:ListBatches takes 3 argument(s), got 2"),
    ],
)
async def test_list_batches_validates_its_arguments(ledger, ids, args, message):
    result = await ledger.call(ids["gw"], "anchor:ListBatches", *args)
    assert result.message.startswith(message), result.message


async def test_unknown_batches_and_heads_are_not_found(ledger, ids):
    assert (await ledger.call(ids["gw"], "anchor:GetBatch", "nope")).message == (
        "not_found: batch nope is not anchored"
    )
    assert (await ledger.call(ids["gw"], "anchor:GetHead", "nope")).message == (
        "not_found: channel nope has no anchored batch"
    )


async def verify(ledger, identity, batch_id, leaf, index, proof):
    result = await ledger.call(
        identity,
        "anchor:VerifyInclusion",
        batch_id,
        leaf.hex() if isinstance(leaf, bytes) else leaf,
        str(index),
        json.dumps([p.hex() if isinstance(p, bytes) else p for p in proof]),
    )
    return result


async def test_verify_inclusion_recomputes_the_anchored_root(ledger, ids):
    batches, _ = await chain_of_three(ledger, ids["gw"])
    leaves = leaves_for("b3", 5)
    for index in range(5):
        result = await verify(
            ledger, ids["gw"], "b3", leaf_hash(leaves[index]), index, path(index, leaves)
        )
        answer = result.json()
        assert answer == {
            "batch_id": "b3",
            "included": True,
            "root": batches[2]["root"],
            "computed_root": batches[2]["root"],
            "leaf_count": 5,
            "reason": None,
        }
        assert result.writes == {}


async def test_verify_inclusion_answers_false_for_a_wrong_leaf_index_or_sibling(ledger, ids):
    await chain_of_three(ledger, ids["gw"])
    leaves = leaves_for("b3", 5)
    good = path(1, leaves)
    wrong_leaf = (await verify(ledger, ids["gw"], "b3", leaf_hash(b"forged"), 1, good)).json()
    assert wrong_leaf["included"] is False
    assert wrong_leaf["reason"] == "the proof leads to a different root"
    wrong_index = (await verify(ledger, ids["gw"], "b3", leaf_hash(leaves[1]), 0, good)).json()
    assert wrong_index["included"] is False
    flipped = [bytes([good[0][0] ^ 1]) + good[0][1:], *good[1:]]
    assert not (await verify(ledger, ids["gw"], "b3", leaf_hash(leaves[1]), 1, flipped)).json()[
        "included"
    ]
    outside = (await verify(ledger, ids["gw"], "b3", leaf_hash(leaves[1]), 5, good)).json()
    assert outside["reason"] == "leaf index 5 is outside a tree of 5 leaves"
    short = (await verify(ledger, ids["gw"], "b3", leaf_hash(leaves[1]), 1, good[:-1])).json()
    assert short["reason"] == "the proof is shorter than a tree of 5 leaves needs"
    assert short["computed_root"] is None


@pytest.mark.parametrize(
    ("leaf", "index", "proof", "message"),
    [
        ("AB" * 32, "0", "[]", "bad_input: leaf_hash must be 64 lower-case hex"),
        ("ab" * 32, "x", "[]", "bad_input: index must be a non-negative decimal integer"),
        ("ab" * 32, "0", "{}", "bad_input: proof must be a JSON array of at most 64 hashes"),
        ("ab" * 32, "0", "nope", "bad_input: proof must be a JSON array of hex hashes"),
        ("ab" * 32, "0", '["ab"]', "bad_input: proof[0] must be 64 lower-case hex"),
        ("ab" * 32, "0", json.dumps(["ab" * 32] * 65), "bad_input: proof must be a JSON array"),
    ],
)
async def test_verify_inclusion_refuses_malformed_input(ledger, ids, leaf, index, proof, message):
    await chain_of_three(ledger, ids["gw"])
    result = await ledger.call(ids["gw"], "anchor:VerifyInclusion", "b1", leaf, index, proof)
    assert result.message.startswith(message), result.message


async def test_verify_inclusion_of_an_unknown_batch_is_not_found(ledger, ids):
    result = await verify(ledger, ids["gw"], "nope", b"\x00" * 32, 0, [])
    assert result.message == "not_found: batch nope is not anchored"


async def test_a_2_pow_20_leaf_proof_verifies(ledger, ids):
    # A tree of 2^20 leaves: the proof for a leaf only needs its 20 siblings, which we build
    # from a leaf hash and arbitrary sibling hashes, then anchor the resulting root.
    import hashlib

    index = 0b1010_0110_1100_0011_0101
    leaf = leaf_hash(b"the event")
    siblings = [hashlib.sha256(bytes([i])).digest() for i in range(20)]
    node = leaf
    for level, sibling in enumerate(siblings):
        if (index >> level) & 1:
            node = hashlib.sha256(b"\x01" + sibling + node).digest()
        else:
            node = hashlib.sha256(b"\x01" + node + sibling).digest()
    batch = make_batch(ids["gw"], "big", "", 1, 2**20, root=node.hex())
    assert (await anchor(ledger, ids["gw"], batch)).ok
    answer = (await verify(ledger, ids["gw"], "big", leaf, index, siblings)).json()
    assert answer["included"] is True and answer["leaf_count"] == 2**20


def test_signing_bytes_match_the_known_answer_of_the_proof_format():
    # docs/proof-format.md, "Batch signing bytes": the gateway, auditors and the chaincode
    # must sign and check the same bytes.
    import hashlib

    from chaincode.contracts.anchor import signing_payload

    payload = signing_payload(
        {
            "batch_id": "market/1",
            "channel": "market",
            "root": "11" * 32,
            "leaf_count": 3,
            "first_seq": 7,
            "last_seq": 9,
            "prev_root": ZERO,
        }
    )
    assert hashlib.sha256(payload).hexdigest() == (
        "20334b9231fb049bdfdb74add06d04050d30ce9b23256317ddddcff35883893d"
    )


async def test_the_gateways_own_batch_record_is_accepted_as_it_is(ledger, ids):
    proof = pytest.importorskip("gateway.anchoring.proof")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    gw = ids["gw"]
    fields = {
        "batch_id": "market/1",
        "channel": "market",
        "root": bytes.fromhex(mth(leaves_for("m", 3)).hex()),
        "leaf_count": 3,
        "first_seq": 1,
        "last_seq": 3,
        "prev_root": bytes(32),
    }
    unsigned = proof.BatchRecord(
        **fields, signature=b"", certificate_pem=gw.cert_pem.decode(), msp_id="Org1MSP"
    )
    signature = gw.key.sign(unsigned.signing_bytes(), ec.ECDSA(hashes.SHA256()))
    record = proof.BatchRecord(
        **fields, signature=signature, certificate_pem=gw.cert_pem.decode(), msp_id="Org1MSP"
    )
    result = await anchor(ledger, gw, record.to_json())
    assert result.ok, result.message
    stored = result.json()
    assert stored["prev_root"] == ZERO and stored["batch_id"] == "market/1"
    assert "certificate" not in stored and stored["submitter"]["fingerprint"] == gw.fingerprint


async def test_a_certificate_or_msp_other_than_the_submitters_is_refused(ledger, ids):
    batch = make_batch(ids["gw"], "c/1", "", 1, 2)
    other_cert = {**batch, "certificate": ids["gw2"].cert_pem.decode()}
    assert (await anchor(ledger, ids["gw"], other_cert)).message == (
        "forbidden: batch.certificate is not the submitter's certificate"
    )
    other_msp = {**batch, "msp_id": "Org2MSP"}
    assert (await anchor(ledger, ids["gw"], other_msp)).message == (
        "forbidden: batch.msp_id Org2MSP is not the submitter's MSP Org1MSP"
    )
    garbage = {**batch, "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n"}
    assert (await anchor(ledger, ids["gw"], garbage)).message == (
        "bad_input: batch.certificate must be a PEM certificate"
    )
    own = {**batch, "certificate": ids["gw"].cert_pem.decode(), "msp_id": "Org1MSP"}
    assert (await anchor(ledger, ids["gw"], own)).ok
