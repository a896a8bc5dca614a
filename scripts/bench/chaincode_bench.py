"""Chaincode benchmarks: the contracts in-process, and optionally on a running network.

Run: .venv/bin/python scripts/bench/chaincode_bench.py [--n 2000]
     .venv/bin/python scripts/bench/chaincode_bench.py --profile <network.json> \
         --msp-dir <admin msp> [--org Org1] [--chaincode anchorline] [--n 50]

In-process (``chaincode.runtime.dispatch`` over an in-memory stub, so only the
contract code and the runtime are measured) it prints the median time of
``anchor:AnchorBatch`` (parse, ECDSA signature check, chain check, writes),
``anchor:GetHead`` and ``anchor:VerifyInclusion`` of a leaf in a 2^20-leaf
batch (a 20-hash proof). With ``--profile`` it also measures, through the
project's Fabric client on the running network, one AnchorBatch submit end to
end (endorse by a majority of orgs, order, commit) and VerifyInclusion of a
2^20-leaf proof evaluated on a peer. The identity in ``--msp-dir`` signs the
batches and must be allowed to anchor (any identity of one org per channel).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import statistics
import time
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import timestamp_pb2

from chaincode.anchorline import CONTRACTS
from chaincode.contracts.anchor import signing_payload
from chaincode.runtime import dispatch

LEVELS = 20


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def big_proof() -> tuple[int, bytes, list[bytes], bytes]:
    """A leaf of a 2^20-leaf tree, its 20-hash proof and the tree's root."""
    index = 0b1011_0010_1110_0001_0110
    leaf = hashlib.sha256(b"\x00" + b"the event").digest()
    proof = [hashlib.sha256(bytes([i])).digest() for i in range(LEVELS)]
    node = leaf
    for level, sibling in enumerate(proof):
        node = _node(sibling, node) if (index >> level) & 1 else _node(node, sibling)
    return index, leaf, proof, node


class _KV:
    def __init__(self, key: str, value: bytes) -> None:
        self.key, self.value = key, value


class MemoryStub:
    def __init__(self, state: dict[str, bytes], creator: dict[str, Any], fn: str, args: list[str]):
        self.state, self.creator, self.fn, self.args = state, creator, fn, args
        self.event: Any = None
        self.ts = timestamp_pb2.Timestamp()
        self.ts.FromDatetime(dt.datetime.now(dt.UTC))
        self.tx = uuid.uuid4().hex

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        return self.fn, self.args

    def get_txid(self) -> str:
        return self.tx

    def get_channel_id(self) -> str:
        return "bench"

    def get_creator(self) -> dict[str, Any]:
        return self.creator

    def get_tx_timestamp(self) -> Any:
        return self.ts

    async def get_state(self, key: str) -> bytes:
        return self.state.get(key, b"")

    async def put_state(self, key: str, value: bytes) -> None:
        self.state[key] = value

    async def delete_state(self, key: str) -> None:
        self.state.pop(key, None)

    def set_event(self, name: str, payload: bytes) -> None:
        self.event = (name, payload)


def identity() -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-gateway")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return key, {"mspid": "Org1MSP", "idBytes": pem}


def batch_doc(sign: Any, channel: str, height: int, prev: str, root: bytes, leaves: int) -> str:
    batch = {
        "batch_id": f"{channel}:{height}",
        "channel": channel,
        "root": root.hex(),
        "leaf_count": leaves,
        "first_seq": 1 + height * leaves,
        "last_seq": (height + 1) * leaves,
        "prev_root": prev,
    }
    return json.dumps(
        {**batch, "signature": base64.b64encode(sign(signing_payload(batch))).decode()}
    )


def _median_us(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e6:9.1f} µs"


async def in_process(n: int) -> None:
    key, creator = identity()

    def sign(data: bytes) -> bytes:
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    state: dict[str, bytes] = {}
    index, leaf, proof, root = big_proof()

    async def call(fn: str, *args: str) -> tuple[float, Any]:
        stub = MemoryStub(state, creator, fn, list(args))
        started = time.perf_counter()
        response = await dispatch(CONTRACTS, stub)
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{fn} failed: {response.message}")
        return elapsed, response

    anchors, prev = [], ""
    for height in range(n):
        doc = batch_doc(sign, "bench", height, prev, root, 2**LEVELS)
        elapsed, _ = await call("anchor:AnchorBatch", doc)
        anchors.append(elapsed)
        prev = root.hex()
        # Each batch needs its own root for a realistic chain; reuse is fine for timing.
    heads = [(await call("anchor:GetHead", "bench"))[0] for _ in range(n)]
    proof_json = json.dumps([p.hex() for p in proof])
    verifies = []
    for _ in range(n):
        elapsed, response = await call(
            "anchor:VerifyInclusion", "bench:0", leaf.hex(), str(index), proof_json
        )
        verifies.append(elapsed)
    assert json.loads(response.payload)["included"] is True
    print(f"in-process, median of {n} calls (dispatch + contract, in-memory state):")
    print(f"  anchor:AnchorBatch                       {_median_us(anchors)}")
    print(f"  anchor:GetHead                           {_median_us(heads)}")
    print(f"  anchor:VerifyInclusion (2^20 leaves)     {_median_us(verifies)}")


async def on_network(args: argparse.Namespace) -> None:
    from gateway.identity.msp import load_msp
    from gateway.identity.signing import sign_message
    from gateway.ledger.connection import from_profile
    from network.profile import NetworkProfile

    profile = NetworkProfile.load(args.profile)
    msp_id = profile.org(args.org).msp_id
    signer = load_msp(args.msp_dir, msp_id, require_key=True).signer()
    gw = from_profile(profile, args.msp_dir, org=args.org)
    try:
        anchor = gw.network(profile.channel).contract(args.chaincode, "anchor")
        channel = f"bench-{uuid.uuid4().hex[:8]}"
        index, leaf, proof, root = big_proof()
        submits, prev = [], ""
        for height in range(args.n):
            doc = batch_doc(
                lambda m: sign_message(signer, m), channel, height, prev, root, 2**LEVELS
            )
            started = time.perf_counter()
            await anchor.submit("AnchorBatch", doc, timeout=60)
            submits.append(time.perf_counter() - started)
            prev = root.hex()
        proof_json = json.dumps([p.hex() for p in proof])
        evaluates = []
        for _ in range(args.n):
            started = time.perf_counter()
            raw = await anchor.evaluate(
                "VerifyInclusion", f"{channel}:0", leaf.hex(), str(index), proof_json
            )
            evaluates.append(time.perf_counter() - started)
        assert json.loads(raw)["included"] is True
        ms = [s * 1000 for s in submits]
        print(f"network {profile.channel}, {args.n} calls:")
        print(
            f"  AnchorBatch submit end to end     median {statistics.median(ms):7.1f} ms "
            f"(min {min(ms):.1f}, max {max(ms):.1f})"
        )
        ev = [s * 1000 for s in evaluates]
        print(
            f"  VerifyInclusion 2^20 (evaluate)   median {statistics.median(ev):7.1f} ms "
            f"(min {min(ev):.1f}, max {max(ev):.1f})"
        )
    finally:
        await gw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="calls per measurement")
    parser.add_argument("--profile", help="network profile JSON of a running network")
    parser.add_argument("--msp-dir", help="MSP folder of the anchoring identity")
    parser.add_argument("--org", default="Org1")
    parser.add_argument("--chaincode", default="anchorline")
    args = parser.parse_args()
    asyncio.run(in_process(args.n or 2000))
    if args.profile:
        if not args.msp_dir:
            parser.error("--profile needs --msp-dir")
        args.n = args.n or 50
        asyncio.run(on_network(args))


if __name__ == "__main__":
    main()
