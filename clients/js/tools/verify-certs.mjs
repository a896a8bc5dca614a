// For tests/integration/js/test_js_trust.py: reads {trust: {mspId: {cacerts, intermediates,
// crls}}, certs: [{name, pem, at, msp_id?}]} and prints {name: {code} | {msp_id, role,
// fingerprint, enrollment_id}} from the JS TrustStore.
import { readFileSync } from "node:fs";
import { TrustStore, AnchorlineError } from "../src/index.js";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const trust = new TrustStore();
for (const [mspId, m] of Object.entries(input.trust)) {
  m.cacerts.forEach((pem, i) => trust.addCa(mspId, pem, i === 0 ? { intermediates: m.intermediates, crls: m.crls } : {}));
}
const out = {};
for (const c of input.certs) {
  try {
    const id = await trust.verify(c.pem, { at: c.at, mspId: c.msp_id ?? undefined });
    out[c.name] = { msp_id: id.mspId, role: id.role, fingerprint: id.fingerprint, enrollment_id: id.enrollmentId };
  } catch (e) {
    if (!(e instanceof AnchorlineError)) throw e;
    out[c.name] = { code: e.code };
  }
}
console.log(JSON.stringify(out));
