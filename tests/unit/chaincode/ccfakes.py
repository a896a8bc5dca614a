"""Test helpers for the chaincode: identities with Fabric CA attributes, a fake stub and ledger.

The fake stub implements the part of ``fabric_shim.interfaces.ChaincodeStubInterface``
the contracts use, with Fabric's semantics where they matter: reads see committed
state only (no read-your-writes), writes apply at commit and only when the
response succeeded, one chaincode event per transaction (last set wins).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_chaincode_python.fabric_shim.interfaces import ChaincodeStubInterface

from chaincode.runtime import dispatch

ATTR_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
T0 = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class CA:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclasses.dataclass(frozen=True)
class Identity:
    msp_id: str
    cert_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def creator(self) -> dict[str, Any]:
        return {"mspid": self.msp_id, "idBytes": self.cert_pem}


def make_ca(name: str) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{name.lower()}.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - dt.timedelta(days=1))
        .not_valid_after(T0 + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CA(name, key, cert)


def fabric_ca_attrs(enrollment_id: str, role: str | None) -> bytes:
    """The attribute extension value exactly as Fabric CA 1.5 writes it (compact JSON)."""
    attrs: dict[str, str] = {
        "hf.Affiliation": "",
        "hf.EnrollmentID": enrollment_id,
        "hf.Type": "client",
    }
    if role is not None:
        attrs["anchorline.role"] = role
    return json.dumps({"attrs": dict(sorted(attrs.items()))}, separators=(",", ":")).encode()


def issue(
    ca: CA,
    msp_id: str,
    name: str,
    role: str | None = "member",
    *,
    attr_value: bytes | None = None,
    san_hosts: tuple[str, ...] = (),
) -> Identity:
    """An end-entity certificate signed by ``ca``; ``attr_value`` overrides the extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - dt.timedelta(days=1))
        .not_valid_after(T0 + dt.timedelta(days=365))
    )
    value = attr_value if attr_value is not None else fabric_ca_attrs(name, role)
    if role is not None or attr_value is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTR_OID, value), critical=False)
    if san_hosts:
        import ipaddress

        sans: list[x509.GeneralName] = []
        for host in san_hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return Identity(msp_id, cert.public_bytes(serialization.Encoding.PEM), cert, key)


@dataclasses.dataclass
class KV:
    key: str
    value: bytes


class _Iterator:
    def __init__(self, items: list[KV]) -> None:
        self._items = items
        self.closed = False

    def __aiter__(self) -> _Iterator:
        return self

    async def __anext__(self) -> KV:
        if not self._items:
            raise StopAsyncIteration
        return self._items.pop(0)

    async def aclose(self) -> None:
        self.closed = True


class FakeStub(ChaincodeStubInterface):
    """One transaction's stub over a :class:`FakeLedger`."""

    def __init__(
        self,
        ledger: FakeLedger,
        function: str,
        args: list[str],
        creator: Any,
        tx_time: dt.datetime,
        tx_id: str,
        channel_id: str = "anchorline",
    ) -> None:
        self.ledger = ledger
        self.function = function
        self.args = args
        self.creator = creator
        self.tx_time = tx_time
        self.tx_id = tx_id
        self.channel_id = channel_id
        self.writes: dict[str, bytes | None] = {}
        self.event: tuple[str, bytes] | None = None
        self.events_set = 0

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        return self.function, list(self.args)

    def get_txid(self) -> str:
        return self.tx_id

    def get_channel_id(self) -> str:
        return self.channel_id

    def get_creator(self) -> Any:
        return self.creator

    def get_tx_timestamp(self) -> Any:
        from google.protobuf import timestamp_pb2

        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(self.tx_time)
        return ts

    async def get_state(self, key: str) -> bytes:
        return self.ledger.state.get(key, b"")

    async def put_state(self, key: str, value: bytes) -> None:
        assert isinstance(value, bytes)
        self.writes[key] = value

    async def delete_state(self, key: str) -> None:
        self.writes[key] = None

    async def get_state_by_partial_composite_key(self, object_type: str, attributes: list[str]):
        prefix = "\x00" + "".join(p + "\x00" for p in [object_type, *attributes])
        items = [KV(k, v) for k, v in sorted(self.ledger.state.items()) if k.startswith(prefix)]
        return _Iterator(items)

    def set_event(self, name: str, payload: bytes) -> None:
        self.events_set += 1
        self.event = (name, bytes(payload))


@dataclasses.dataclass
class Result:
    status: int
    payload: bytes
    message: str
    event: tuple[str, Any] | None
    writes: dict[str, bytes | None]

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        return json.loads(self.payload)


class FakeLedger:
    """Committed state plus a clock; ``call`` simulates one endorse-and-commit."""

    def __init__(self, contracts: list[Any], channel_id: str = "anchorline") -> None:
        self.contracts = contracts
        self.channel_id = channel_id
        self.state: dict[str, bytes] = {}
        self.now = T0
        self._ids = itertools.count(1)
        self.events: list[tuple[str, Any]] = []

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    async def call(
        self, identity: Identity | Any, function: str, *args: str, commit: bool = True
    ) -> Result:
        creator = identity.creator if isinstance(identity, Identity) else identity
        tx_id = f"{next(self._ids):064x}"
        stub = FakeStub(self, function, list(args), creator, self.now, tx_id, self.channel_id)
        response = await dispatch(self.contracts, stub)
        event = None
        if stub.event is not None and response.status < 400:
            event = (stub.event[0], json.loads(stub.event[1]))
        if commit and response.status < 400:
            for key, value in stub.writes.items():
                if value is None:
                    self.state.pop(key, None)
                else:
                    self.state[key] = value
            if event is not None:
                self.events.append(event)
        return Result(response.status, response.payload, response.message, event, stub.writes)


def sign_batch(identity: Identity, batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` with the ``signature`` the anchor contract expects from ``identity``."""
    import base64

    from chaincode.contracts.anchor import signing_payload

    signature = identity.key.sign(signing_payload(batch), ec.ECDSA(hashes.SHA256()))
    return {**batch, "signature": base64.b64encode(signature).decode()}
