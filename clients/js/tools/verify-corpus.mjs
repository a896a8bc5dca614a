// Runs the JS verifier over a proof corpus (tests/integration/js/test_js_corpus.py writes
// it) and prints one JSON line: {name: {malformed} | {ok, checks: {name: ok}}}.
import { readFileSync } from "node:fs";
import { verifyProof, TrustStore, AnchorlineError } from "../src/index.js";

const corpus = JSON.parse(readFileSync(process.argv[2], "utf8"));
const trust = new TrustStore();
for (const [mspId, m] of Object.entries(corpus.trust)) {
  m.cacerts.forEach((pem, i) => trust.addCa(mspId, pem, i === 0 ? { crls: m.crls || [] } : {}));
}
const out = {};
let total = 0;
for (const c of corpus.cases) {
  const t0 = performance.now();
  try {
    const v = await verifyProof(c.proof, trust, { at: corpus.at, gatewayMsp: c.gateway_msp });
    out[c.name] = { ok: v.ok, checks: Object.fromEntries(v.checks.map((x) => [x.name, x.ok])) };
  } catch (e) {
    if (!(e instanceof AnchorlineError)) throw e;
    out[c.name] = { malformed: e.details.field ?? null, code: e.code };
  }
  total += performance.now() - t0;
}
console.log(JSON.stringify({ results: out, ms_per_case: total / corpus.cases.length }));
