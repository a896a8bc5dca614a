// Anchorline browser crypto: RFC 8785 canonical JSON, PEM/DER, ECDSA P-256 (WebCrypto),
// RFC 6962 / 9162 Merkle inclusion. No dependencies, no build step.
"use strict";
const AL = (window.AL = window.AL || {});

// RFC 8785: keys sorted by UTF-16 code units, ES number formatting, minimal string escapes.
AL.canonical = function canonical(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("RFC 8785 has no NaN or Infinity");
    return JSON.stringify(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  const keys = Object.keys(value).sort(); // JS sorts by UTF-16 code units, as RFC 8785 asks
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
};

AL.utf8 = (s) => new TextEncoder().encode(s);
AL.hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
AL.unhex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
AL.b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
AL.unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
AL.concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
AL.sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

AL.pemBlocks = function (text) {
  const out = [];
  const re = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/g;
  let m;
  while ((m = re.exec(text))) out.push({ type: m[1], der: AL.unb64(m[2].replace(/\s+/g, "")), pem: m[0] + "\n" });
  return out;
};

// Minimal DER reader: enough to find a certificate's SubjectPublicKeyInfo.
function tlv(bytes, pos) {
  const tag = bytes[pos];
  let len = bytes[pos + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | bytes[pos + 2 + i];
    hdr += n;
  }
  return { tag, start: pos, body: pos + hdr, end: pos + hdr + len };
}
function children(bytes, node) {
  const out = [];
  for (let p = node.body; p < node.end; ) { const c = tlv(bytes, p); out.push(c); p = c.end; }
  return out;
}
AL.spkiOfCertificate = function (der) {
  const cert = tlv(der, 0);
  const tbs = children(der, cert)[0];
  const fields = children(der, tbs);
  const offset = fields[0].tag === 0xa0 ? 1 : 0; // [0] version is optional
  const spki = fields[offset + 5];
  return der.slice(spki.start, spki.end);
};
AL.fingerprint = async (certDer) => AL.hex(await AL.sha256(certDer));

// WebCrypto speaks raw r||s; certificates, Fabric and the gateway speak DER.
AL.rawToDer = function (raw) {
  const int = (b) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    b = b.slice(i);
    if (b[0] & 0x80) b = AL.concat(new Uint8Array([0]), b);
    return AL.concat(new Uint8Array([0x02, b.length]), b);
  };
  const r = int(raw.slice(0, 32)), s = int(raw.slice(32));
  return AL.concat(new Uint8Array([0x30, r.length + s.length]), r, s);
};
AL.derToRaw = function (der) {
  const seq = tlv(der, 0);
  const [r, s] = children(der, seq);
  const fix = (n) => {
    let b = der.slice(n.body, n.end);
    while (b.length > 32 && b[0] === 0) b = b.slice(1);
    const out = new Uint8Array(32);
    out.set(b, 32 - b.length);
    return out;
  };
  return AL.concat(fix(r), fix(s));
};

const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
AL.importPrivateKey = (pkcs8) => crypto.subtle.importKey("pkcs8", pkcs8, ECDSA, false, ["sign"]);
AL.importCertKey = (certDer) =>
  crypto.subtle.importKey("spki", AL.spkiOfCertificate(certDer), ECDSA, false, ["verify"]);
AL.sign = async (key, bytes) =>
  AL.rawToDer(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, bytes)));
AL.verify = async (key, derSig, bytes) => {
  try {
    return await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, AL.derToRaw(derSig), bytes);
  } catch (e) { return false; }
};

// RFC 6962 hashing and RFC 9162 §2.1.3.2 inclusion verification.
AL.hashLeaf = (data) => AL.sha256(AL.concat(new Uint8Array([0]), data));
AL.hashChildren = (l, r) => AL.sha256(AL.concat(new Uint8Array([1]), l, r));
AL.rootFromInclusion = async function (index, size, leaf, path) {
  if (index >= size) throw new Error("leaf index outside the tree");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) throw new Error("proof longer than the tree allows");
    if (fn % 2 === 1 || fn === sn) {
      r = await AL.hashChildren(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await AL.hashChildren(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("proof shorter than the tree needs");
  return r;
};

// docs/proof-format.md, steps 3-9, in the browser.
AL.verifyProof = async function (proof) {
  const checks = [];
  const check = (name, ok, detail) => checks.push({ name, ok: !!ok, detail: detail || "" });
  const ev = proof.event;
  check("format", proof.format === "anchorline.event-proof/1", proof.format);
  const senderDer = AL.pemBlocks(ev.certificate)[0].der;
  check("sender-fingerprint", (await AL.fingerprint(senderDer)) === ev.signer);
  const eventBytes = AL.utf8(AL.canonical(ev.record));
  const senderKey = await AL.importCertKey(senderDer);
  check("event-signature", await AL.verify(senderKey, AL.unb64(ev.signature), eventBytes));
  const leafData = AL.utf8(AL.canonical({ event: ev.record, seq: ev.seq, signer: ev.signer, signature: ev.signature, v: 1 }));
  const leaf = await AL.hashLeaf(leafData);
  check("leaf-hash", AL.hex(leaf) === proof.leaf_hash, AL.hex(leaf));
  const b = proof.batch, inc = proof.inclusion;
  check("sequence",
    ev.record.channel === b.channel && b.last_seq - b.first_seq + 1 === b.leaf_count &&
    inc.batch_size === b.leaf_count && ev.seq === b.first_seq + inc.index);
  let root = "";
  try {
    root = AL.hex(await AL.rootFromInclusion(inc.index, inc.batch_size, leaf, inc.siblings.map(AL.unhex)));
  } catch (e) { root = "error: " + e.message; }
  check("inclusion", root === b.root, "root " + root.slice(0, 16) + "…");
  const batchBytes = AL.utf8(AL.canonical({
    type: "anchorline.batch/1", batch_id: b.batch_id, channel: b.channel, root: b.root,
    leaf_count: b.leaf_count, first_seq: b.first_seq, last_seq: b.last_seq, prev_root: b.prev_root,
  }));
  const gwKey = await AL.importCertKey(AL.pemBlocks(b.certificate)[0].der);
  check("batch-signature", await AL.verify(gwKey, AL.unb64(b.signature), batchBytes));
  check("anchor-record", proof.anchor && proof.anchor.block_number !== null,
    proof.anchor ? "tx " + proof.anchor.tx_id.slice(0, 16) + "… block " + proof.anchor.block_number : "not anchored");
  return checks;
};
