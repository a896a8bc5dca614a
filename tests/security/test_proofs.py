"""Threat: a malformed or altered proof file, as an independent auditor receives one.

An auditor must never see VERIFIED for something the member did not sign
(an extra field, a duplicate key), never a traceback, and an offline check
must read only the proof and the MSP folders it is given.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.anchoring.proof import EventProof, verify_offline
from gateway.cli.main import main
from gateway.errors import (
    AnchorlineError,
    JsonDuplicateKey,
    JsonInvalidUtf8,
    JsonSyntaxError,
    JsonTooDeep,
    JsonTooLarge,
)
from gateway.events.signed import sign_event
from gateway.identity.ca import EmbeddedCA
from gateway.identity.signing import EcdsaSigner
from gateway.merkle.errors import ProofDocumentError
from tests.unit.anchoring.test_event_proof import World, _build, _identity


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    alice = _identity(ca, "Org1", "alice", "member")
    bob = _identity(ca, "Org2", "bob", "member")
    gateway = _identity(ca, "Org3", "gateway", "admin")
    return World(ca, ca.trust_store(), alice, bob, gateway, _build(alice, bob, gateway, n=5))


def _doc(world: World) -> dict[str, Any]:
    return copy.deepcopy(world.proofs[2].to_json())


# -- item 2: duplicate keys ---------------------------------------------------------------


def test_a_duplicate_seq_key_is_refused_not_read_twice(world: World) -> None:
    text = json.dumps(_doc(world))
    seq = world.proofs[2].event.seq
    forged = text.replace(f'"seq": {seq}', f'"seq": {seq}, "seq": {seq + 1}', 1)
    assert forged != text
    with pytest.raises(JsonDuplicateKey):
        EventProof.from_json(forged)
    # The same in the payload: {"amount":1,"amount":999} is two readings of one signature.
    forged = text.replace('"amount": ', '"amount": 1, "amount": ', 1)
    with pytest.raises(JsonDuplicateKey):
        EventProof.from_json(forged.encode())


# -- item 3: unknown fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [(), ("event",), ("event", "record"), ("inclusion",), ("batch",), ("anchor",)],
)
def test_a_field_the_format_does_not_define_is_refused(
    world: World, where: tuple[str, ...]
) -> None:
    doc = _doc(world)
    target = doc
    for key in where:
        target = target[key]
    target["amount_override"] = 999
    # It would verify if the field were ignored: the signature does not cover it.
    with pytest.raises(ProofDocumentError, match="amount_override") as caught:
        EventProof.from_json(json.dumps(doc))
    assert caught.value.code == "AL1840"
    assert caught.value.details["field"] == (".".join(where) or "proof") + ".amount_override"


def test_the_intake_limits_bound_a_proof_record(world: World) -> None:
    doc = _doc(world)
    deep: Any = 1
    for _ in range(40):
        deep = {"d": deep}
    doc["event"]["record"]["payload"] = deep
    with pytest.raises(AnchorlineError) as caught:
        EventProof.from_json(json.dumps(doc))
    assert caught.value.code == "AL1017"


# -- items 7 and 9: the CLI -----------------------------------------------------------------


def _trust_args(world: World, root: Path | None = None) -> list[str]:
    base = root or world.ca.root
    out: list[str] = []
    for org in ("Org1", "Org2", "Org3"):
        out += ["--msp", f"{org}MSP={base / org / 'msp'}"]
    return out


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content hash (what 'writes nothing' compares)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    } | {str(p.relative_to(root)) + "/": "" for p in root.rglob("*") if p.is_dir()}


@pytest.fixture
def auditor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> Path:
    """An auditor's copy of the three org MSP folders, and an empty state folder."""
    trust = tmp_path / "trust"
    for org in ("Org1", "Org2", "Org3"):
        shutil.copytree(world.ca.root / org / "msp", trust / org / "msp")
    home = tmp_path / "home"
    monkeypatch.setenv("ANCHORLINE_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return trust


def test_offline_verify_reads_only_the_proof_and_the_msp_folders(
    world: World, auditor_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(_doc(world)))
    before = _tree(tmp_path)
    code = main(["verify", str(proof), "--offline", *_trust_args(world, auditor_home)])
    out = capsys.readouterr()
    assert code == 0, out
    assert "VERIFIED: every check holds (offline, trusting Org1MSP, Org2MSP, Org3MSP)" in out.out
    assert _tree(tmp_path) == before  # no embedded ledger, no CA keys, nothing
    assert not (tmp_path / "home").exists()


def test_offline_verify_of_a_missing_or_partial_folder_creates_nothing(
    world: World, auditor_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(_doc(world)))
    partial = tmp_path / "partial"
    (partial / "msp").mkdir(parents=True)
    before = _tree(tmp_path)
    for folder in (tmp_path / "missing", partial / "msp"):
        code = main(["verify", str(proof), "--offline", "--msp", f"Org1MSP={folder}"])
        err = capsys.readouterr().err
        assert code == 1
        assert err.startswith("error AL1209: ") and err.count("\n") == 1, err
    # Without the gateway's MSP the batch signer is not trusted: NOT VERIFIED, exit 1.
    code = main(
        ["verify", str(proof), "--offline", "--msp", f"Org1MSP={auditor_home / 'Org1/msp'}"]
    )
    assert code == 1 and "FAIL gateway-certificate" in capsys.readouterr().out
    assert _tree(tmp_path) == before


def test_offline_refuses_a_ledger_and_a_folder_without_its_msp_id(
    world: World, auditor_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(_doc(world)))
    for extra in (
        ["--msp", str(auditor_home / "Org1/msp")],
        ["--peer", "embedded", *_trust_args(world)],
    ):
        assert main(["verify", str(proof), "--offline", *extra]) == 1
        assert capsys.readouterr().err.startswith("error AL1002: ")


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (_nested(100_000), JsonTooLarge.code),  # 200 KB: refused before it is parsed
        (_nested(40_000), JsonTooDeep.code),
        (b'{"format": "anchorline.event-proof/1", "x": "\xff\xfe"}', JsonInvalidUtf8.code),
        (b'{"format": "anchorline.event-proof/1", "event": {"rec', JsonSyntaxError.code),
        (b"", JsonSyntaxError.code),
        (b"[1, 2, 3]", ProofDocumentError.code),
        (b'"a proof"', ProofDocumentError.code),
        (b"null", ProofDocumentError.code),
        (b'{"format": "anchorline.event-proof/1", "format": "x"}', JsonDuplicateKey.code),
    ],
)
def test_unreadable_proofs_are_one_line_errors_with_a_code(
    world: World,
    auditor_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    code: str,
) -> None:
    proof = tmp_path / "proof.json"
    proof.write_bytes(content)
    for mode in (
        ["--offline", *_trust_args(world)],
        ["--msp", str(auditor_home), "--peer", "embedded"],
    ):
        assert main(["verify", str(proof), *mode]) == 1
        out = capsys.readouterr()
        assert out.err.startswith(f"error {code}: "), out.err
        assert out.err.count("\n") == 1 and "Traceback" not in out.err + out.out


def test_a_truncated_copy_of_a_real_proof_is_refused_at_every_length(world: World) -> None:
    text = json.dumps(_doc(world)).encode()
    for cut in range(0, len(text) - 1, 97):
        with pytest.raises(JsonSyntaxError):
            EventProof.from_json(text[:cut])


def test_signing_a_payload_nested_500_deep_is_a_typed_error(world: World) -> None:
    deep: Any = 0
    for _ in range(500):
        deep = [deep]
    with pytest.raises(JsonTooDeep):
        sign_event(EcdsaSigner(world.alice.key), channel="c", type="t", payload=deep)


@pytest.mark.parametrize("where", ["record", "batch"])
def test_a_certificate_with_a_key_type_unknown_to_cryptography_is_not_verified(
    world: World, where: str
) -> None:
    """Found by the fuzz below: a proof whose certificate's key algorithm is one
    cryptography cannot load crashed verify (UnsupportedAlgorithm); now it fails."""
    import base64

    doc = _doc(world)
    holder = doc["event"] if where == "record" else doc["batch"]
    pem = holder["certificate"]
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    ec_public_key = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1
    assert der.count(ec_public_key) == 1
    der = der.replace(ec_public_key, bytes.fromhex("06072a8648ce3d0209"))
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    holder["certificate"] = "\n".join(
        ["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----", ""]
    )
    verdict = verify_offline(EventProof.from_json(json.dumps(doc).encode()), world.trust)
    assert not verdict.ok


# -- the fuzz: any input is refused with a code, or verifies unaltered ---------------------


def _bound(proof: EventProof) -> Any:
    """What an offline verdict vouches for: the signed event, its place, the signed batch."""
    e = proof.event
    return (e.record(), e.seq, e.signer, e.signature, proof.leaf_hash, proof.batch.signed_fields())


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def _mutated_documents(draw: st.DrawFn, original: dict[str, Any]) -> bytes:
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add", "dup"]))
        if not path:
            continue
        last = path[-1]
        if action == "replace":
            parent[last] = draw(_values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[last]
        elif action == "add" and isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=8))] = draw(_values)
    try:
        text = json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError):
        text = b"{}"
    # Byte-level damage too: a cut, a flipped byte, a duplicated key.
    damage = draw(st.sampled_from(["none", "cut", "flip", "dup"]))
    if damage == "cut" and text:
        text = text[: draw(st.integers(min_value=0, max_value=len(text) - 1))]
    elif damage == "flip" and text:
        i = draw(st.integers(min_value=0, max_value=len(text) - 1))
        text = text[:i] + bytes([text[i] ^ draw(st.integers(1, 255))]) + text[i + 1 :]
    elif damage == "dup":
        text = text.replace(b'"seq": ', b'"seq": 0, "seq": ', 1)
    return text


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_proof_files_are_refused_with_a_code_or_verify_unaltered(
    world: World, data: st.DataObject
) -> None:
    original = world.proofs[2]
    text = data.draw(_mutated_documents(original.to_json()))
    try:
        proof = EventProof.from_json(text)
    except AnchorlineError as exc:
        assert exc.code.startswith("AL1"), exc
        return
    verdict = verify_offline(proof, world.trust)
    if verdict.ok:
        # Only changes that alter nothing the signatures cover may pass: status,
        # an optional msp_id dropped, the anchor (the ledger check's business).
        assert _bound(proof) == _bound(original)
