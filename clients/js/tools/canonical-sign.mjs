// For the cross-language test: reads {values, msp_dir, python_events} (JSON file), and
// prints {canonical: [hex of RFC 8785 bytes], signed: [wire events signed here with the
// MSP folder's key, payload = each value], python_verified: [bool per Python-signed event]}.
import { readFileSync } from "node:fs";
import { canonicalBytes, signEvent, toHex, fromBase64, derToRaw, Certificate } from "../src/index.js";
import { loadIdentity } from "../src/file-storage.js";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const identity = await loadIdentity(input.msp_dir);
const canonical = input.values.map((v) => toHex(canonicalBytes(v)));
const signed = [];
for (const [i, payload] of input.values.entries()) {
  try {
    signed.push(await signEvent(identity, { channel: "c", type: "t", payload, id: `js-${i}`, clientTs: 1764000000000 + i }));
  } catch (e) {
    if (e.code !== "AL1601") throw e;
    signed.push(null); // an integer the gateway could not take: refused before sending
  }
}
const key = await Certificate.from(input.python_certificate).publicKey();
const python_verified = [];
for (const ev of input.python_events) {
  const { signature, ...body } = ev;
  const raw = derToRaw(fromBase64(signature));
  python_verified.push(raw !== null && (await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, raw, canonicalBytes(body))));
}
console.log(JSON.stringify({ canonical, signed, python_verified }));
