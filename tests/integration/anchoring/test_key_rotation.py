"""Rotating the gateway's token key: proofs and checkpoints from before and after verify
with the key of their time, the retired key is refused beyond its marks, and a member's
revocation after an anchor leaves that member's earlier events verifiable."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from gateway.anchoring.audit import verify_on_ledger
from gateway.anchoring.checkpoint import (
    Checkpoint,
    EcdsaNoteSigner,
    SignedNote,
    sign_checkpoint,
    verify_checkpoint,
)
from gateway.anchoring.errors import GatewayKeyRetired
from gateway.anchoring.keyhistory import KeyHistory, anchor_position
from gateway.anchoring.ledger import auditor_ledger
from gateway.anchoring.proof import EventProof, verify_offline
from gateway.cli.main import main
from gateway.client.member import MemberClient
from gateway.config import Settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.msp import load_msp
from gateway.identity.pkcs11 import Token, TokenConfig
from gateway.identity.signing import sign_message
from gateway.ledger.connection import EMBEDDED_GATEWAY_NAME, open_ledger
from gateway.merkle.errors import NoteVerificationError
from tests.integration.anchoring.support import anchoring_settings, wait_finalized
from tests.integration.gateway.support import running_gateway
from tests.softhsm_fixtures import SoftHsm

pytestmark = pytest.mark.softhsm
CHANNEL = "rot"


def _settings(home: Path, softhsm: SoftHsm, label: str, msp_dir: str = "") -> Settings:
    base = anchoring_settings(home)
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(base.ledger, kind="embedded", msp_dir=msp_dir),
        pkcs11=softhsm.settings(key_label=label),
    )


async def _phase(
    settings: Settings, ca: EmbeddedCA, member: Path, first: int, count: int
) -> tuple[list[EventProof], dict[str, object], dict[str, object]]:
    """Emit ``count`` events as the member, wait until finalized; the proofs, the
    checkpoint (JSON form) and the key history the gateway publishes."""
    async with running_gateway(settings, ca) as gw:
        client = MemberClient.from_msp(gw.url, member, "Org2MSP")
        try:
            await client.login()
            await client.connect()
            await client.join(CHANNEL)
            for k in range(count):
                ack = await client.emit(CHANNEL, "note", {"k": first + k})
                assert ack.ok, ack.error
            await wait_finalized(gw.app, CHANNEL, first + count - 1, timeout=30)
            proofs = [
                EventProof.from_json(json.dumps(await client.get(f"/events/{CHANNEL}/{seq}/proof")))
                for seq in range(first, first + count)
            ]
            checkpoint = await client.get(f"/channels/{CHANNEL}/checkpoint?format=json")
            keys = await client.get("/gateway/keys")
        finally:
            await client.close()
    return proofs, checkpoint, keys


async def test_rotation_keeps_old_proofs_and_refuses_the_retired_key(
    tmp_path: Path,
    softhsm: SoftHsm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = _settings(tmp_path, softhsm, "rot-k1")
    ca = EmbeddedCA(old.embedded_dir / "ca")
    token = Token.open(TokenConfig.from_settings(old.pkcs11))
    old_signer = token.generate_key("rot-k1")
    member = ca.enroll("Org2", "alice", "member")
    auditor = ca.enroll("Org3", "audrey", "auditor")
    try:
        before, ck1, keys1 = await _phase(old, ca, member, 1, 6)

        # The operator rotates through the CLI (settings from the environment, PIN from
        # its file), with the gateway stopped.
        for name, value in {
            "ANCHORLINE_HOME": str(tmp_path),
            "ANCHORLINE_LEDGER_KIND": "embedded",
            "ANCHORLINE_GATEWAY_DATABASE_URL": old.gateway.database_url,
            "ANCHORLINE_PKCS11_MODULE": str(softhsm.module),
            "ANCHORLINE_PKCS11_TOKEN_LABEL": softhsm.token_label,
            "ANCHORLINE_PKCS11_PIN_FILE": str(softhsm.pin_file),
            "ANCHORLINE_PKCS11_KEY_LABEL": "rot-k1",
        }.items():
            monkeypatch.setenv(name, value)
        rotate = ["gateway", "rotate-key", "--label", "rot-k2", "--generate"]
        assert await asyncio.to_thread(main, rotate) == 0
        new_msp = ca.identity_dir("Org1", f"{EMBEDDED_GATEWAY_NAME}-rot-k2")
        assert not (new_msp / "keystore").exists()

        # The old key no longer starts a gateway: no fallback, a typed error.
        with pytest.raises(GatewayKeyRetired):
            async with running_gateway(old, ca):
                pass
        new = _settings(tmp_path, softhsm, "rot-k2", msp_dir=str(new_msp))
        after, ck2, keys2 = await _phase(new, ca, member, 7, 5)
    except BaseException:
        token.close()
        raise
    assert keys1["keys"] and len(keys1["keys"]) == 1  # type: ignore[arg-type]
    history = KeyHistory.from_json(keys2)
    assert len(history.keys) == 2 and history.keys[0].retired_at_ms is not None
    assert history.keys[0].retired_after[CHANNEL].log_size == 6
    assert {b.batch.certificate_pem for b in before} != {a.batch.certificate_pem for a in after}

    # Checkpoints: the key change shows in the signature line under the origin.
    origin = str(ck1["origin"])
    sig1 = SignedNote.parse(str(ck1["checkpoint"])).signatures[0]
    sig2 = SignedNote.parse(str(ck2["checkpoint"])).signatures[0]
    assert sig1.name == sig2.name == origin and sig1.key_id != sig2.key_id
    assert f"{sig1.key_id:08x}" == history.keys[0].key_id
    for ck, size in ((ck1, 6), (ck2, 11)):
        checked = history.verify_checkpoint(str(ck["checkpoint"]), origin=origin, channel=CHANNEL)
        assert checked.size == size

    # The retired key signing past its mark: a checkpoint of the larger log is refused.
    retired_signer = EcdsaNoteSigner(origin, old_signer.public_key, old_signer)
    forged_ck = sign_checkpoint(Checkpoint(origin, 11, bytes(32)), retired_signer)
    verify_checkpoint(forged_ck, history.verifiers(origin), origin=origin)  # the bare signature
    with pytest.raises(NoteVerificationError, match="retired"):
        history.verify_checkpoint(forged_ck, origin=origin, channel=CHANNEL)

    # The member's certificate is revoked (and renewed) after its events were anchored.
    # CRL dates have one-second precision and an anchor in the revocation's own second
    # counts as after it: revoke in a later second.
    await asyncio.sleep(1.1)
    old_alice = load_msp(member, "Org2MSP").identity.certificate
    renewed = load_msp(ca.reenroll("Org2", "alice"), "Org2MSP", require_key=True)
    ca.revoke("Org2", "alice", serial=format(old_alice.serial_number, "x"))
    trust = ca.trust_store()
    old_cert = load_msp(ca.identity_dir("Org1", EMBEDDED_GATEWAY_NAME), "Org1MSP")
    conn = open_ledger(new, peer="embedded", msp_dir=auditor)
    reader = auditor_ledger(conn)
    try:
        for proof in before + after:
            position = await anchor_position(proof, reader)
            assert position is not None
            verdict = verify_offline(proof, trust, at=position.at, gateway_msp="Org1MSP")
            assert verdict.ok, verdict.summary()
            check = history.check_batch(proof.batch.certificate_pem, CHANNEL, position.height)
            assert check.ok, check.detail
            ledger_checks = await verify_on_ledger(proof, reader)
            assert all(c.ok for c in ledger_checks), [c for c in ledger_checks if not c.ok]
        # Checked now instead of at the anchor's time, the revocation would refuse it.
        now = verify_offline(before[0], trust, at=dt.datetime.now(dt.UTC))
        assert not now.check("sender-certificate").ok
        assert "revoked" in now.check("sender-certificate").detail
        # The renewed certificate of the same member is good now.
        assert trust.verify(renewed.identity.certificate_pem).enrollment_id == "alice"

        # A batch the retired key signs after its retirement: the history refuses it.
        late = after[-1]
        position = await anchor_position(late, reader)
        assert position is not None
        forged_batch = dataclasses.replace(
            late.batch,
            signature=sign_message(old_signer, late.batch.signing_bytes()),
            certificate_pem=old_cert.identity.certificate_pem.decode(),
        )
        forged = dataclasses.replace(late, batch=forged_batch)
        assert verify_offline(forged, trust, at=position.at).check("batch-signature").ok
        refused = history.check_batch(forged.batch.certificate_pem, CHANNEL, position.height)
        assert not refused.ok and "after its retirement" in refused.detail
    finally:
        await conn.close()
        token.close()

    # `anchorline verify` does the same from files, with the auditor's own identity.
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys2))
    good, bad = tmp_path / "good.json", tmp_path / "forged.json"
    good.write_text(json.dumps(before[0].to_json()))
    bad.write_text(json.dumps(forged.to_json()))
    base = ["--msp", str(auditor), "--peer", "embedded", "--gateway-keys", str(keys_file)]
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["verify", str(good), *base, "--json"]) == 0
    checks = {c["name"]: c["ok"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["gateway-key"] and checks["sender-certificate"] and all(checks.values())
    assert await asyncio.to_thread(main, ["verify", str(bad), *base, "--json"]) == 1
    checks = {c["name"]: c["ok"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert not checks["gateway-key"] and checks["batch-signature"]


async def test_a_gateway_still_running_after_a_rotation_stops_signing_batches(
    tmp_path: Path,
) -> None:
    from gateway.anchoring.keyhistory import rotate
    from gateway.clock import now_ms
    from gateway.web.proofs import ANCHORING

    base = anchoring_settings(tmp_path)
    settings = dataclasses.replace(base, ledger=dataclasses.replace(base.ledger, kind="embedded"))
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    member = ca.enroll("Org2", "bob", "member")
    successor = load_msp(ca.enroll("Org1", "gw-successor", "admin"), "Org1MSP").identity
    async with running_gateway(settings, ca) as gw:
        service = gw.app[ANCHORING].service
        client = MemberClient.from_msp(gw.url, member, "Org2MSP")
        try:
            await client.login()
            await client.connect()
            await client.join(CHANNEL)
            for k in range(3):
                assert (await client.emit(CHANNEL, "note", {"k": k})).ok
            await wait_finalized(gw.app, CHANNEL, 3, timeout=30)
            recorded = service.batcher.batches_recorded
            await rotate(service.store, successor, now_ms=now_ms())
            for k in range(3):
                assert (await client.emit(CHANNEL, "note", {"k": 3 + k})).ok
            await asyncio.sleep(1.0)  # several batch windows of 50 ms
            assert service.batcher.batches_recorded == recorded
            assert service.status()["channels"][CHANNEL]["finalized_upto"] == 3
        finally:
            await client.close()
