import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Identity,
  signEvent,
  canonicalBytes,
  rawToDer,
  derToRaw,
  isLowS,
  fromBase64,
  toBase64,
  fromHex,
  toHex,
  sha256,
  batchSigningBytes,
  leafData,
  hashLeaf,
} from "../src/index.js";
import { P256_ORDER } from "../src/der.js";
import { readJson } from "./helpers.js";

const N = P256_ORDER;

function be(n, size = 32) {
  return fromHex(n.toString(16).padStart(size * 2, "0"));
}

test("raw r||s to DER normalises s to the low half and back", () => {
  const r = 0x1234n;
  const highS = N - 5n;
  const der = rawToDer(new Uint8Array([...be(r), ...be(highS)]));
  assert.ok(isLowS(der));
  const back = derToRaw(der);
  assert.equal(toHex(back.subarray(32)), toHex(be(5n)));
  assert.equal(toHex(back.subarray(0, 32)), toHex(be(r)));
});

test("DER with a non-minimal integer or a negative one is refused", () => {
  assert.equal(derToRaw(Uint8Array.of(0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01)), null);
  assert.equal(derToRaw(Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01)), null);
  assert.notEqual(derToRaw(Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01)), null);
});

test("base64 is strict standard base64 with padding", () => {
  assert.equal(toBase64(fromBase64("MAYCAQECAQE=")), "MAYCAQECAQE=");
  for (const bad of ["MAYCAQECAQE", "MAY-AQECAQE=", "M=AA", "a"]) assert.equal(fromBase64(bad), null, bad);
});

test("leaf and batch known answers of docs/proof-format.md", async () => {
  const record = { id: "ev-1", channel: "market", type: "bid", payload: { amount: 12, item: "lot-7" }, client_ts: 1764000000000 };
  const leaf = await hashLeaf(leafData(record, { seq: 7, signer: "ab".repeat(32), signature: toBase64(Uint8Array.of(0x30, 6, 2, 1, 1, 2, 1, 1)) }));
  assert.equal(toHex(leaf), "9210736244e640abc5107e20316ab3cf41650833ad018ce7f18691d7dd4d11ad");
  const bytes = batchSigningBytes({
    batchId: "market/1",
    channel: "market",
    root: new Uint8Array(32).fill(0x11),
    leafCount: 3,
    firstSeq: 7,
    lastSeq: 9,
    prevRoot: new Uint8Array(32),
  });
  assert.equal(toHex(await sha256(bytes)), "20334b9231fb049bdfdb74add06d04050d30ce9b23256317ddddcff35883893d");
});

test("an identity from PEM signs events that verify, low-S, over the RFC 8785 bytes", async () => {
  const corpus = await readJson("corpus/proofs.json");
  const { certificate, key } = corpus.signer;
  const identity = await Identity.fromPem(certificate, key, "Org1MSP");
  assert.equal(identity.privateKey.extractable, false);
  const pub = await identity.certificate.publicKey();
  for (let i = 0; i < 20; i++) {
    const ev = await signEvent(identity, { channel: "c", type: "t", payload: { i, s: "é" } });
    const der = fromBase64(ev.signature);
    assert.ok(isLowS(der));
    const { signature, ...body } = ev;
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, derToRaw(der), canonicalBytes(body));
    assert.ok(ok);
  }
});

test("a non-extractable WebCrypto key works as an identity", async () => {
  const corpus = await readJson("corpus/proofs.json");
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const identity = Identity.fromCryptoKey(corpus.signer.certificate, pair.privateKey);
  const der = await identity.sign("hello");
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, derToRaw(der), new TextEncoder().encode("hello"));
  assert.ok(ok);
});
