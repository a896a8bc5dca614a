"""Defect (d): the creator's role and fingerprint come from its certificate."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from fabric_chaincode_python.fabric_contract_api.contractapi.transaction_context import (
    ClientIdentity as ShimClientIdentity,
)
from fabric_protos.msp import identities_pb2

from chaincode.runtime import ClientIdentity, Forbidden
from tests.unit.chaincode.ccfakes import issue, make_ca


class _Stub:
    def __init__(self, creator):
        self._creator = creator

    def get_creator(self):
        return self._creator


@pytest.fixture(scope="module")
def org1():
    return make_ca("Org1")


def test_role_and_attributes_are_read_from_the_fabric_ca_extension(org1):
    admin = issue(org1, "Org1MSP", "carol", role="admin")
    identity = ClientIdentity(_Stub(admin.creator))
    assert identity.role == "admin"
    assert identity.get_attribute("anchorline.role") == "admin"
    assert identity.get_attribute("hf.EnrollmentID") == "carol"
    assert identity.get_attribute("missing") is None
    assert identity.assert_attribute("hf.Type")
    assert identity.assert_attribute_value("anchorline.role", "admin")
    assert not identity.assert_attribute_value("anchorline.role", "member")


def test_the_shim_identity_never_returns_attributes(org1):
    # The defect this layer corrects: same certificate, shim answers None.
    admin = issue(org1, "Org1MSP", "carol", role="admin")
    assert ShimClientIdentity(_Stub(admin.creator)).get_attribute("anchorline.role") is None


def test_fingerprint_is_sha256_of_the_der_certificate(org1):
    alice = issue(org1, "Org1MSP", "alice")
    identity = ClientIdentity(_Stub(alice.creator))
    der = alice.cert.public_bytes(serialization.Encoding.DER)
    assert identity.fingerprint == hashlib.sha256(der).hexdigest()
    assert identity.msp_id == identity.get_mspid() == "Org1MSP"
    assert identity.get_x509() == alice.cert_pem


@pytest.mark.parametrize("form", ["dict", "proto", "bytes"])
def test_every_creator_form_a_stub_may_return_is_accepted(org1, form):
    alice = issue(org1, "Org1MSP", "alice", role="auditor")
    sid = identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=alice.cert_pem)
    creator = {"dict": alice.creator, "proto": sid, "bytes": sid.SerializeToString()}[form]
    identity = ClientIdentity(_Stub(creator))
    assert (identity.msp_id, identity.role) == ("Org1MSP", "auditor")


@pytest.mark.parametrize(
    "value",
    [b"not json", b'{"attrs": "admin"}', b"[1,2]", b'{"other": {"anchorline.role": "admin"}}'],
)
def test_a_malformed_attribute_extension_grants_no_role(org1, value):
    odd = issue(org1, "Org1MSP", "mallory", attr_value=value)
    identity = ClientIdentity(_Stub(odd.creator))
    assert identity.role is None
    assert identity.attributes == {}


def test_a_certificate_without_attributes_has_no_role(org1):
    plain = issue(org1, "Org1MSP", "plain", role=None)
    assert ClientIdentity(_Stub(plain.creator)).role is None


@pytest.mark.parametrize(
    "creator",
    [None, {"mspid": "Org1MSP", "idBytes": b""}, {"mspid": "", "idBytes": b"x"}, object()],
)
def test_a_missing_or_empty_creator_is_forbidden(creator):
    with pytest.raises(Forbidden):
        ClientIdentity(_Stub(creator))


def test_an_unparseable_certificate_is_forbidden():
    with pytest.raises(Forbidden, match="cannot be parsed"):
        ClientIdentity(_Stub({"mspid": "Org1MSP", "idBytes": b"-----BEGIN CERTIFICATE-----\nxx"}))


def test_get_id_is_the_go_cid_form(org1):
    import base64

    alice = issue(org1, "Org1MSP", "alice")
    decoded = base64.b64decode(ClientIdentity(_Stub(alice.creator)).get_id()).decode()
    assert decoded == "x509::CN=alice,OU=client::CN=ca.org1.example"
