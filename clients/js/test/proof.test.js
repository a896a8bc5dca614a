import { test } from "node:test";
import assert from "node:assert/strict";
import { verifyProof, TrustStore, Certificate, AnchorlineError, CHECKS } from "../src/index.js";
import { readJson, trustFrom } from "./helpers.js";

// The corpus is written by tests/integration/js/test_js_corpus.py from proofs a real
// gateway served, altered in known ways; `expected` is what the reference verifier
// (gateway.anchoring.proof.verify_offline, as `anchorline verify --offline`) said.
const corpus = await readJson("corpus/proofs.json");
const trust = trustFrom(TrustStore, corpus.trust);

for (const c of corpus.cases) {
  test(`proof corpus: ${c.name}`, async () => {
    if (c.expected.malformed) {
      await assert.rejects(verifyProof(c.proof, trust, { at: corpus.at }), (e) => e instanceof AnchorlineError && e.code === "AL1840" && e.details.field === c.expected.malformed);
      return;
    }
    const verdict = await verifyProof(c.proof, trust, { at: corpus.at, gatewayMsp: c.gateway_msp });
    assert.deepEqual(verdict.checks.map((x) => x.name), CHECKS);
    assert.deepEqual(Object.fromEntries(verdict.checks.map((x) => [x.name, x.ok])), c.expected.checks);
    assert.equal(verdict.ok, c.expected.ok);
  });
}

test("trust store: the sender certificate's identity, and refusals with the gateway's codes", async () => {
  const valid = corpus.cases.find((c) => c.name === "valid");
  const ident = await trust.verify(valid.proof.event.certificate, { at: corpus.at });
  assert.equal(ident.mspId, valid.proof.event.msp_id);
  assert.equal(ident.role, "member");
  assert.equal(ident.fingerprint, valid.proof.event.signer);
  const cert = Certificate.from(valid.proof.event.certificate);
  await assert.rejects(trust.verify(cert, { at: cert.notAfter + 1000 }), (e) => e.code === "AL1204");
  await assert.rejects(trust.verify(cert, { at: cert.notBefore - 1000 }), (e) => e.code === "AL1205");
  await assert.rejects(trust.verify(cert, { at: corpus.at, mspId: "NoSuchMSP" }), (e) => e.code === "AL1203");
  await assert.rejects(new TrustStore().verify(cert), (e) => e.code === "AL1203");
  const revoked = corpus.cases.find((c) => c.name === "revoked-sender");
  await assert.rejects(trust.verify(revoked.proof.event.certificate, { at: corpus.at }), (e) => e.code === "AL1206");
});

test("verifier time per proof (reported by the suite)", async () => {
  const valid = corpus.cases.find((c) => c.name === "valid");
  const fresh = trustFrom(TrustStore, corpus.trust);
  await verifyProof(valid.proof, fresh, { at: corpus.at }); // warm: keys imported, chain cached
  const n = 50;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) assert.ok((await verifyProof(valid.proof, fresh, { at: corpus.at })).ok);
  const ms = (performance.now() - t0) / n;
  console.log(JSON.stringify({ metric: "verify_ms_per_proof", value: Number(ms.toFixed(3)) }));
});
