"""The JS client package in headless Chromium (Debian's, driven by Playwright).

The package's own tests (``clients/js/test/*.test.js``, the ones ``node --test`` runs)
run unchanged in a page, with ``node:test``/``node:assert`` mapped to small shims; then
a page logs in with a PEM identity, emits, waits for finalized and verifies the proof,
certificate chain included, timing the first acknowledged event.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.js.support import JS_DIR, js_gateway, node_ready

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
    pytest.mark.skipif(node_ready() is not None, reason=str(node_ready())),
]

LIVE = """
async ([certificate, key, trustDirs, channel]) => {
  const t0 = performance.now();
  const al = await import('/js/src/index.js');
  const identity = await al.Identity.fromPem(certificate, key, 'Org1MSP');
  localStorage.clear();
  const storage = new al.LocalStorage();
  const client = new al.AnchorlineClient(location.origin, identity, {storage});
  await client.login();
  await client.connect();
  await client.join(channel);
  const ack = await client.emit(channel, 'bid', {amount: 7, note: 'from Chromium'});
  const firstAck = performance.now() - t0;
  const t1 = performance.now();
  await client.emit(channel, 'bid', {amount: 8});
  const secondAck = performance.now() - t1;
  const resumed = new Promise((resolve) => client.once('resumed', resolve));
  client.socket.io.engine.close();
  const resume = await resumed;
  const afterDrop = await client.emit(channel, 'bid', {amount: 9});
  const stored = localStorage.getItem('anchorline:last-seq:' + channel);
  const final = await ack.settled('finalized', {timeoutMs: 60000});
  const proof = await client.proof(channel, ack.seq);
  const trust = new al.TrustStore();
  for (const [mspId, cas] of Object.entries(trustDirs)) {
    for (const pem of cas) trust.addCa(mspId, pem);
  }
  const verdict = await al.verifyProof(proof, trust);
  const t2 = performance.now();
  const n = 20;
  for (let i = 0; i < n; i++) await al.verifyProof(proof, trust);
  const verifyMs = (performance.now() - t2) / n;
  proof.event.record.payload.amount = 1;
  const tampered = await al.verifyProof(proof, trust);
  await client.close();
  // Warm figures: a new client each time (login, connect, join, first emit acknowledged).
  const warm = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const c = new al.AnchorlineClient(location.origin, identity);
    await c.login();
    await c.connect();
    await c.join(channel);
    await c.emit(channel, 'bid', {amount: 10 + i});
    warm.push(performance.now() - t);
    await c.close();
  }
  warm.sort((a, b) => a - b);
  return {firstAck, secondAck, status: final.status, ok: verdict.ok,
          checks: verdict.checks.map(c => c.name + ':' + c.ok), verifyMs,
          tampered: tampered.checks.filter(c => !c.ok).map(c => c.name),
          extractable: identity.privateKey.extractable, resumed: resume.channels[channel],
          afterDropSeq: afterDrop.seq, stored, warmMedian: warm[2]};
}
"""


async def test_package_tests_and_a_live_member_in_chromium(tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    files = ",".join(sorted(p.name for p in (JS_DIR / "test").glob("*.test.js")))
    async with (
        js_gateway(tmp_path / "home", browser=True) as g,
        playwright_api.async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{g.url}/js/test/browser/index.html?files={files}")
            await page.wait_for_selector("body[data-done='1']", state="attached", timeout=60_000)
            results = await page.evaluate("window.__results")
            failed = [r for r in results if not r["ok"]]
            assert not failed, failed
            assert len(results) >= 60, results  # every test of the Node suite ran here too
            assert not errors, errors

            member = g.members["js"]
            certificate = next((member / "signcerts").iterdir()).read_text()
            key = next((member / "keystore").iterdir()).read_text()
            trust = {
                msp_id: [p.read_text() for p in sorted((Path(d) / "cacerts").iterdir())]
                for msp_id, d in g.org_msps().items()
            }
            live = await page.evaluate(LIVE, [certificate, key, trust, "browser"])
        finally:
            await browser.close()
    assert live["ok"], live["checks"]
    assert live["status"] == "finalized" and live["extractable"] is False
    assert live["resumed"]["joined"] and live["afterDropSeq"] == 3
    assert live["stored"] == "3"  # the last seq, kept in localStorage
    assert "event-signature" in live["tampered"] and "inclusion" in live["tampered"]
    print(
        json.dumps(
            {
                "metric": "browser",
                "first_ack_ms_from_module_load": round(live["firstAck"], 1),
                "first_ack_ms_new_client_median_of_5": round(live["warmMedian"], 1),
                "next_ack_ms": round(live["secondAck"], 1),
                "verify_ms_per_proof": round(live["verifyMs"], 2),
            }
        )
    )
