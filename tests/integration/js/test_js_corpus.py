"""The JS verifier and the reference agree on a corpus of valid and altered proofs.

The proofs come from a live gateway (embedded ledger, trust path on): events of a
Python member with payloads that stress RFC 8785, one from a member revoked since.
Each altered copy changes one thing. The reference verdict (``verify_offline``) is
checked against ``anchorline verify --offline --json`` run as a command, and against
``clients/js/tools/verify-corpus.mjs``. The corpus is kept in
``clients/js/test/corpus/proofs.json`` for the package's own Node and Chromium tests;
set ``ANCHORLINE_WRITE_JS_CORPUS=1`` to replace it with the fresh one.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.client import MemberClient
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore, fingerprint, load_certificate
from tests.integration.js.corpus import (
    PAYLOADS,
    altered_cases,
    reference_verdict,
    trust_spec,
    wait_finalized,
)
from tests.integration.js.support import JS_DIR, js_gateway, node_ready, run_node

pytestmark = pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))

COMMITTED = JS_DIR / "test" / "corpus" / "proofs.json"
CHANNEL = "corpus"


def _cli_verdicts(
    home: Path, msps: dict[str, str], cases: list[dict[str, Any]], folder: Path
) -> dict:
    """``anchorline verify FILE --offline --msp MSPID=FOLDER… --json`` for every case, in
    one interpreter: the auditor's offline check, trusting the orgs' MSP folders."""
    files = []
    for case in cases:
        path = folder / f"{case['name']}.json"
        path.write_text(json.dumps(case["proof"]))
        files.append((case["name"], str(path), case.get("gateway_msp")))
    script = (
        "import contextlib, io, json, sys\n"
        "from gateway.cli.main import main\n"
        "out = {}\n"
        "for name, path, pin in json.loads(sys.argv[1]):\n"
        "    buf, err = io.StringIO(), io.StringIO()\n"
        "    args = ['verify', path, '--offline', '--json']\n"
        "    for spec in json.loads(sys.argv[2]): args += ['--msp', spec]\n"
        "    if pin: args += ['--gateway-msp', pin]\n"
        "    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):\n"
        "        rc = main(args)\n"
        "    out[name] = {'rc': rc, 'stdout': buf.getvalue(), 'stderr': err.getvalue()}\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            json.dumps(files),
            json.dumps([f"{k}={v}" for k, v in msps.items()]),
        ],
        env={**os.environ, "ANCHORLINE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def _make_corpus(tmp_path: Path) -> tuple[dict[str, Any], Path, Path]:
    home = tmp_path / "home"
    async with js_gateway(home) as g:
        ca = g.ca
        revoked_dir = ca.enroll("Org2", "revoked-user", "member")
        py = MemberClient.from_msp(g.url, g.members["py"], g.msp_ids["py"])
        gone = MemberClient.from_msp(g.url, revoked_dir, "Org2MSP")
        for c in (py, gone):
            await c.login()
            await c.connect()
            await c.join(CHANNEL)
        # Sent together, so they share a batch and the middle ones have siblings.
        acks = await asyncio.gather(*(py.emit(CHANNEL, "bid", p) for p in PAYLOADS))
        gone_ack = await gone.emit(CHANNEL, "bid", {"amount": 1})
        assert all(a.ok for a in acks) and gone_ack.ok, (acks, gone_ack)
        seqs = [a.seq for a in acks if a.seq is not None]
        assert gone_ack.seq is not None
        for seq in [*seqs, gone_ack.seq]:
            await wait_finalized(py, CHANNEL, seq)
        proofs = {seq: await py.get(f"/events/{CHANNEL}/{seq}/proof") for seq in seqs}
        revoked_proof = await py.get(f"/events/{CHANNEL}/{gone_ack.seq}/proof")
        await gone.close()
        ca.revoke("Org2", "revoked-user")
        await py.close()
        org_msps = g.org_msps()
        js_member = g.members["js"]
        other_member_cert = next((g.members["py"] / "signcerts").iterdir()).read_text()

    foreign = EmbeddedCA(tmp_path / "foreign-ca").enroll("Org1", "stranger", "member")
    foreign_pem = next((foreign / "signcerts").iterdir()).read_text()
    foreign_fp = fingerprint(load_certificate(foreign_pem))
    with_siblings = [p for p in proofs.values() if len(p["inclusion"]["siblings"]) >= 2]
    assert with_siblings, "no proof with two siblings: the events did not share a batch"
    base = with_siblings[0]
    other = next(p for p in proofs.values() if p is not base)
    cases: list[dict[str, Any]] = [{"name": "valid", "proof": base}]
    cases += [
        {"name": f"valid-payload-{i}", "proof": p}
        for i, p in enumerate(proofs.values())
        if p is not base
    ]
    cases.append({"name": "revoked-sender", "proof": revoked_proof})
    cases += altered_cases(
        base,
        other=other,
        other_member_cert=other_member_cert,
        foreign_cert=(foreign_pem, foreign_fp),
    )
    corpus: dict[str, Any] = {
        "comment": "written by tests/integration/js/test_js_corpus.py; expected = the reference "
        "verifier's verdict (gateway.anchoring.proof.verify_offline) at `at`",
        "at": int(time.time() * 1000),
        "trust": trust_spec(org_msps),
        "signer": {
            "certificate": next((js_member / "signcerts").iterdir()).read_text(),
            "key": next((js_member / "keystore").iterdir()).read_text(),
        },
        "cases": cases,
    }
    return corpus, home, org_msps


async def test_js_verifier_agrees_with_anchorline_verify(tmp_path: Path) -> None:
    corpus, home, org_msps = await _make_corpus(tmp_path)
    trust = TrustStore()
    for msp_id, spec in corpus["trust"].items():
        for i, pem in enumerate(spec["cacerts"]):
            trust.add_ca(msp_id, pem, crls=spec["crls"] if i == 0 else ())
    for case in corpus["cases"]:
        case["expected"] = reference_verdict(case, trust, corpus["at"])
    expected = {c["name"]: c["expected"] for c in corpus["cases"]}
    # The corpus covers both outcomes of every check, and malformed documents.
    assert expected["valid"]["ok"] and not expected["revoked-sender"]["ok"]
    for name in expected["valid"]["checks"]:
        assert any(not e.get("checks", {name: True})[name] for e in expected.values()), name
    assert sum(1 for e in expected.values() if "malformed" in e) >= 10

    path = tmp_path / "proofs.json"
    path.write_text(json.dumps(corpus, indent=1, ensure_ascii=False))
    js = await run_node(JS_DIR / "tools" / "verify-corpus.mjs", {}, str(path))
    for name, want in expected.items():
        got = js["results"][name]
        if "malformed" in want:
            assert got == {"malformed": want["malformed"], "code": "AL1840"}, name
        else:
            assert got == want, name

    # The same verdicts from the command an auditor types.
    cli = await asyncio.to_thread(_cli_verdicts, home, org_msps, corpus["cases"], tmp_path)
    for name, want in expected.items():
        run = cli[name]
        if "malformed" in want:
            assert run["rc"] == 1 and "AL1840" in run["stderr"], (name, run)
            continue
        body = json.loads(run["stdout"])
        assert body["verified"] == want["ok"] and run["rc"] == (0 if want["ok"] else 1), name
        assert {c["name"]: c["ok"] for c in body["checks"]} == want["checks"], name

    if os.environ.get("ANCHORLINE_WRITE_JS_CORPUS") == "1" or not COMMITTED.exists():
        COMMITTED.parent.mkdir(parents=True, exist_ok=True)
        COMMITTED.write_text(json.dumps(corpus, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({"metric": "js_verify_ms_per_case", "value": js["ms_per_case"]}))
