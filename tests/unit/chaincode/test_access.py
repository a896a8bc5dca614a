"""Access contract: channel ownership, grants by fingerprint or MSP, expiry, admin role."""

from __future__ import annotations

import json

import pytest

from chaincode.anchorline import CONTRACTS
from tests.unit.chaincode.ccfakes import FakeLedger, issue, make_ca


@pytest.fixture(scope="module")
def ids():
    org1, org2, org3 = make_ca("Org1"), make_ca("Org2"), make_ca("Org3")
    return {
        "admin1": issue(org1, "Org1MSP", "admin", role="admin"),
        "member1": issue(org1, "Org1MSP", "alice", role="member"),
        "auditor1": issue(org1, "Org1MSP", "audrey", role="auditor"),
        "norole1": issue(org1, "Org1MSP", "plain", role=None),
        "admin2": issue(org2, "Org2MSP", "admin", role="admin"),
        "member2": issue(org2, "Org2MSP", "bob", role="member"),
        "member3": issue(org3, "Org3MSP", "carl", role="member"),
    }


@pytest.fixture
async def ledger(ids):
    ledger = FakeLedger(CONTRACTS)
    assert (await ledger.call(ids["admin1"], "access:RegisterChannel", "premium")).ok
    return ledger


def grant_doc(subject_kind, value, expires="2026-11-26T12:00:00Z", channel="premium"):
    return json.dumps(
        {
            "channel": channel,
            "subject": {"kind": subject_kind, "value": value},
            "expires_at": expires,
        }
    )


async def check(ledger, ids, who, channel="premium"):
    identity = ids[who]
    return (
        await ledger.call(
            ids["member3"], "access:CheckAccess", channel, identity.msp_id, identity.fingerprint
        )
    ).json()


async def test_registration_makes_the_admins_org_the_owner(ledger, ids):
    record = (await ledger.call(ids["member2"], "access:GetChannel", "premium")).json()
    assert record["owner_msp"] == "Org1MSP"
    assert record["registered_by"]["fingerprint"] == ids["admin1"].fingerprint
    assert ledger.events[-1][0] == "ChannelRegistered"
    again = await ledger.call(ids["admin2"], "access:RegisterChannel", "premium")
    assert again.message == "conflict: channel premium is already registered by Org1MSP"


@pytest.mark.parametrize(
    ("who", "role"), [("member1", "member"), ("auditor1", "auditor"), ("norole1", "absent")]
)
async def test_only_admins_register_channels(ledger, ids, who, role):
    result = await ledger.call(ids[who], "access:RegisterChannel", "other")
    assert result.message == (
        "forbidden: only an admin (certificate attribute anchorline.role=admin) may register "
        f"a channel; the creator's role is {role}"
    )


async def test_owner_org_members_have_access_without_a_grant(ledger, ids):
    answer = await check(ledger, ids, "member1")
    assert answer["allowed"] is True and answer["reason"] == "owner"


async def test_a_fingerprint_grant_admits_that_member_only(ledger, ids):
    assert (await check(ledger, ids, "member2"))["reason"] == "no_grant"
    granted = await ledger.call(
        ids["admin1"], "access:GrantAccess", grant_doc("fingerprint", ids["member2"].fingerprint)
    )
    assert granted.ok, granted.message
    record = granted.json()
    assert record["grant_id"] == f"fingerprint:{ids['member2'].fingerprint}"
    assert ledger.events[-1] == ("AccessGranted", record)
    answer = await check(ledger, ids, "member2")
    assert (answer["allowed"], answer["reason"], answer["grant"]) == (True, "grant", record)
    assert (await check(ledger, ids, "member3"))["allowed"] is False


async def test_an_msp_grant_admits_every_member_of_that_org(ledger, ids):
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", grant_doc("msp", "Org2MSP"))).ok
    assert (await check(ledger, ids, "member2"))["allowed"] is True
    assert (await check(ledger, ids, "admin2"))["allowed"] is True
    assert (await check(ledger, ids, "member3"))["allowed"] is False
    msp_only = await ledger.call(ids["member3"], "access:CheckAccess", "premium", "Org2MSP", "")
    assert msp_only.json()["allowed"] is True


async def test_an_expired_grant_denies_access(ledger, ids):
    doc = grant_doc("fingerprint", ids["member2"].fingerprint, expires="2026-11-25T12:30:00Z")
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", doc)).ok
    ledger.advance(minutes=29)
    assert (await check(ledger, ids, "member2"))["allowed"] is True
    ledger.advance(minutes=1)
    answer = await check(ledger, ids, "member2")
    assert (answer["allowed"], answer["reason"]) == (False, "expired")
    assert answer["checked_at"] == "2026-11-25T12:30:00.000000Z"
    listed = (await ledger.call(ids["member1"], "access:ListGrants", "premium")).json()
    assert [g["active"] for g in listed["grants"]] == [False]


async def test_revocation_denies_at_once_and_emits_access_revoked(ledger, ids):
    fp = ids["member2"].fingerprint
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", grant_doc("fingerprint", fp))).ok
    revoked = await ledger.call(
        ids["admin1"], "access:RevokeAccess", "premium", f"fingerprint:{fp}"
    )
    assert revoked.ok, revoked.message
    assert revoked.json()["revoked_by"]["fingerprint"] == ids["admin1"].fingerprint
    assert ledger.events[-1] == ("AccessRevoked", revoked.json())
    assert (await check(ledger, ids, "member2"))["reason"] == "no_grant"
    again = await ledger.call(ids["admin1"], "access:RevokeAccess", "premium", f"fingerprint:{fp}")
    assert again.message == f"not_found: channel premium has no grant fingerprint:{fp}"


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("member1", "forbidden: only an admin (certificate attribute anchorline.role=admin) may"),
        ("auditor1", "forbidden: only an admin (certificate attribute anchorline.role=admin) may"),
        ("admin2", "forbidden: channel premium is owned by Org1MSP; only its admins may"),
    ],
)
async def test_only_admins_of_the_owning_org_grant_and_revoke(ledger, ids, who, message):
    fp = ids["member2"].fingerprint
    result = await ledger.call(ids[who], "access:GrantAccess", grant_doc("fingerprint", fp))
    assert result.message.startswith(message), result.message
    assert result.writes == {}
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", grant_doc("msp", "Org3MSP"))).ok
    revoke = await ledger.call(ids[who], "access:RevokeAccess", "premium", "msp:Org3MSP")
    assert revoke.message.startswith(message)
    assert (await check(ledger, ids, "member3"))["allowed"] is True


async def test_granting_again_replaces_the_grant(ledger, ids):
    first = grant_doc("msp", "Org3MSP", expires="2026-11-25T12:10:00Z")
    second = grant_doc("msp", "Org3MSP", expires="2026-12-25T12:00:00Z")
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", first)).ok
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", second)).ok
    listed = (await ledger.call(ids["member1"], "access:ListGrants", "premium")).json()
    assert [(g["grant_id"], g["expires_at"]) for g in listed["grants"]] == [
        ("msp:Org3MSP", "2026-12-25T12:00:00Z")
    ]


async def test_list_grants_shows_every_grant_in_id_order(ledger, ids):
    fp = ids["member2"].fingerprint
    for doc in (grant_doc("msp", "Org3MSP"), grant_doc("fingerprint", fp)):
        assert (await ledger.call(ids["admin1"], "access:GrantAccess", doc)).ok
    listed = (await ledger.call(ids["member2"], "access:ListGrants", "premium")).json()
    assert listed["owner_msp"] == "Org1MSP"
    assert [g["grant_id"] for g in listed["grants"]] == [f"fingerprint:{fp}", "msp:Org3MSP"]
    assert all(g["active"] for g in listed["grants"])
    other = await ledger.call(ids["admin2"], "access:RegisterChannel", "other")
    assert other.ok
    assert (await ledger.call(ids["admin2"], "access:ListGrants", "other")).json()["grants"] == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (grant_doc("role", "x"), "grant.subject.kind must be one of fingerprint, msp"),
        (grant_doc("fingerprint", "abc"), "grant.subject.value must be 64 lower-case hex"),
        (grant_doc("msp", "Org 2"), "grant.subject.value must be an MSP id"),
        (
            grant_doc("msp", "Org2MSP", expires="2026-11-25T11:00:00Z"),
            "grant.expires_at must be after",
        ),
        (grant_doc("msp", "Org2MSP", expires="2026-11-25"), "grant.expires_at must be an RFC 3339"),
        ('{"channel": "premium"}', "grant is missing field(s): expires_at, subject"),
    ],
)
async def test_malformed_grants_are_refused(ledger, ids, doc, message):
    result = await ledger.call(ids["admin1"], "access:GrantAccess", doc)
    assert result.message.startswith("bad_input: " + message), result.message


async def test_unknown_channels_are_not_found(ledger, ids):
    doc = grant_doc("msp", "Org2MSP", channel="ghost")
    assert (await ledger.call(ids["admin1"], "access:GrantAccess", doc)).message == (
        "not_found: channel ghost is not registered"
    )
    fp = ids["member2"].fingerprint
    result = await ledger.call(ids["member2"], "access:CheckAccess", "ghost", "Org2MSP", fp)
    assert result.message == "not_found: channel ghost is not registered"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["premium", "Org 2", ""], "bad_input: msp_id must be an MSP id"),
        (["premium", "Org2MSP", "xyz"], "bad_input: fingerprint must be 64 lower-case hex"),
        (["premium", "Org2MSP"], "bad_input: access:CheckAccess takes 3 argument(s), got 2"),
    ],
)
async def test_check_access_validates_its_arguments(ledger, ids, args, message):
    result = await ledger.call(ids["member2"], "access:CheckAccess", *args)
    assert result.message.startswith(message)


async def test_revoke_validates_the_grant_id(ledger, ids):
    for bad in ("nocolon", "role:x", "msp:"):
        result = await ledger.call(ids["admin1"], "access:RevokeAccess", "premium", bad)
        assert result.message.startswith("bad_input:"), result.message
