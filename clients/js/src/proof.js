// The offline check of an event proof (docs/proof-format.md, `anchorline.event-proof/1`):
// the same checks, names and order as gateway/anchoring/proof.py `verify_offline`, which
// `anchorline verify --offline` runs. Only the ledger check (step 11) is left out: it
// needs the auditor's own peer.

import { AnchorlineError, anchorlineError } from "./errors.js";
import { canonicalBytes } from "./canonical.js";
import { fromBase64, fromHex, subtle, toBase64, toHex } from "./bytes.js";
import { derToRaw } from "./der.js";
import { leafData, hashLeaf, SIGNED_FIELDS, verifyInclusion } from "./merkle.js";
import { Certificate } from "./x509.js";

export const PROOF_FORMAT = "anchorline.event-proof/1";
export const BATCH_RECORD_TYPE = "anchorline.batch/1";

/** The names of the checks, in the order they run and are reported. */
export const CHECKS = [
  "sender-certificate",
  "sender-fingerprint",
  "event-signature",
  "leaf-hash",
  "sequence",
  "inclusion",
  "gateway-certificate",
  "batch-signature",
  "anchor-record",
];

function bad(message, field) {
  return anchorlineError("AL1840", message, { details: { field } });
}

function get(obj, key, where) {
  if (!Object.prototype.hasOwnProperty.call(obj, key)) throw bad(`${where}.${key} is missing`, `${where}.${key}`);
  return obj[key];
}
function object(obj, key, where) {
  const v = get(obj, key, where);
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad(`${where}.${key} must be an object`, `${where}.${key}`);
  return v;
}
function str(obj, key, where) {
  const v = get(obj, key, where);
  if (typeof v !== "string") throw bad(`${where}.${key} must be a string`, `${where}.${key}`);
  return v;
}
function int(obj, key, where, optional = false) {
  const v = optional ? obj[key] : get(obj, key, where);
  if (optional && (v === null || v === undefined)) return null;
  if (!Number.isSafeInteger(v) || v < 0) throw bad(`${where}.${key} must be a non-negative integer`, `${where}.${key}`);
  return v;
}
function hexValue(v, field) {
  if (typeof v !== "string" || v !== v.toLowerCase()) throw bad(`${field} must be lower-case hex`, field);
  const b = fromHex(v);
  if (b === null) throw bad(`${field} is not hex`, field);
  return b;
}
function hex(obj, key, where) {
  return hexValue(str(obj, key, where), `${where}.${key}`);
}
function b64(obj, key, where) {
  const b = fromBase64(str(obj, key, where));
  if (b === null) throw bad(`${where}.${key} is not standard base64`, `${where}.${key}`);
  return b;
}
function optStr(obj, key, where) {
  const v = obj[key];
  if (v === null || v === undefined) return null;
  if (typeof v !== "string") throw bad(`${where}.${key} must be a string`, `${where}.${key}`);
  return v;
}

/**
 * Parse and type-check a proof document (object or JSON text). Rejects with AL1840 and
 * `details.field` naming the first missing or ill-typed field, as the reference does.
 */
export function parseProof(data) {
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch (e) {
      throw bad(`proof is not JSON: ${e.message}`);
    }
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw bad("proof must be a JSON object");
  if (data.format !== PROOF_FORMAT) {
    throw bad(`proof format ${JSON.stringify(data.format)} is not '${PROOF_FORMAT}'; use a verifier for that format`, "format");
  }
  const anchorRaw = data.anchor;
  if (anchorRaw !== null && anchorRaw !== undefined && (typeof anchorRaw !== "object" || Array.isArray(anchorRaw))) {
    throw bad("anchor must be an object or null", "anchor");
  }
  const ev = object(data, "event", "proof");
  const rec = object(ev, "record", "event");
  for (const f of SIGNED_FIELDS) get(rec, f, "event.record");
  const event = {
    id: str(rec, "id", "event.record"),
    channel: str(rec, "channel", "event.record"),
    type: str(rec, "type", "event.record"),
    payload: rec.payload,
    client_ts: int(rec, "client_ts", "event.record"),
    seq: int(ev, "seq", "event"),
    signer: toHex(hex(ev, "signer", "event")),
    signature: b64(ev, "signature", "event"),
    certificate: str(ev, "certificate", "event"),
    mspId: optStr(ev, "msp_id", "event"),
  };
  const leafHash = hex(data, "leaf_hash", "proof");
  const inc = object(data, "inclusion", "proof");
  const siblingsRaw = get(inc, "siblings", "inclusion");
  if (!Array.isArray(siblingsRaw)) throw bad("inclusion.siblings must be a list", "inclusion.siblings");
  const inclusion = {
    index: int(inc, "index", "inclusion"),
    batchSize: int(inc, "batch_size", "inclusion"),
    siblings: siblingsRaw.map((s, i) => hexValue(s, `inclusion.siblings[${i}]`)),
  };
  const b = object(data, "batch", "proof");
  const batch = {
    batchId: str(b, "batch_id", "batch"),
    channel: str(b, "channel", "batch"),
    root: hex(b, "root", "batch"),
    leafCount: int(b, "leaf_count", "batch"),
    firstSeq: int(b, "first_seq", "batch"),
    lastSeq: int(b, "last_seq", "batch"),
    prevRoot: hex(b, "prev_root", "batch"),
    signature: b64(b, "signature", "batch"),
    certificate: str(b, "certificate", "batch"),
    mspId: optStr(b, "msp_id", "batch"),
  };
  let anchor = null;
  if (anchorRaw !== null && anchorRaw !== undefined) {
    anchor = {
      txId: str(anchorRaw, "tx_id", "anchor"),
      blockNumber: int(anchorRaw, "block_number", "anchor", true),
      fabricChannel: str(anchorRaw, "fabric_channel", "anchor"),
      chaincode: str(anchorRaw, "chaincode", "anchor"),
    };
  }
  const status = str(data, "status", "proof");
  return { event, leafHash, inclusion, batch, anchor, status };
}

/** The bytes the gateway signs for a batch record (docs/proof-format.md, batch signing bytes). */
export function batchSigningBytes(batch) {
  return canonicalBytes({
    type: BATCH_RECORD_TYPE,
    batch_id: batch.batchId,
    channel: batch.channel,
    root: toHex(batch.root),
    leaf_count: batch.leafCount,
    first_seq: batch.firstSeq,
    last_seq: batch.lastSeq,
    prev_root: toHex(batch.prevRoot),
  });
}

async function verifySig(cert, message, signature) {
  if (!cert || !cert.curve) return false;
  const rawSig = derToRaw(signature, cert.curve.size);
  if (rawSig === null) return false;
  try {
    return await subtle().verify({ name: "ECDSA", hash: "SHA-256" }, await cert.publicKey(), rawSig, message);
  } catch {
    return false;
  }
}

const parsedCerts = new Map();
function parsed(pem) {
  // A verifier checks many proofs signed by few certificates: parse each once.
  let c = parsedCerts.get(pem);
  if (!c) {
    c = Certificate.from(pem);
    if (parsedCerts.size > 256) parsedCerts.clear();
    parsedCerts.set(pem, c);
  }
  return c;
}

async function verifyIdentity(trust, pem, claimedMsp, pinnedMsp, at) {
  let ident;
  try {
    ident = await trust.verify(parsed(pem), { at, mspId: pinnedMsp ?? undefined });
  } catch (e) {
    if (e instanceof AnchorlineError) return [null, e.reason];
    throw e;
  }
  if (claimedMsp !== null && ident.mspId !== claimedMsp) {
    return [null, `certificate belongs to ${ident.mspId}, but the proof says ${claimedMsp}`];
  }
  return [ident, `${ident.subject} of ${ident.mspId} (role ${ident.role || "none"})`];
}

/**
 * Check a proof without the ledger; every check runs and is reported.
 *
 * `trust` is a TrustStore with the channel's MSPs (CA certificates and CRLs).
 * Certificates are checked at `at` (ms or Date; default now). `gatewayMsp` pins the MSP
 * the batch signer must belong to. Resolves to `{ok, checks: [{name, ok, detail}],
 * sender, gateway}`; `ok` only when all nine checks hold. Rejects with AL1840 when the
 * document itself is malformed (see parseProof).
 */
export async function verifyProof(proofDocument, trust, { at, gatewayMsp } = {}) {
  const proof = parseProof(proofDocument);
  const { event: ev, batch, inclusion: inc } = proof;
  const checks = [];
  const add = (name, ok, detail) => checks.push({ name, ok: Boolean(ok), detail });

  const [sender, senderDetail] = await verifyIdentity(trust, ev.certificate, ev.mspId, null, at);
  add("sender-certificate", sender !== null, senderDetail);
  let actualFp = "";
  try {
    actualFp = await parsed(ev.certificate).fingerprint();
    add("sender-fingerprint", actualFp === ev.signer, `certificate SHA-256 ${actualFp}` + (actualFp === ev.signer ? "" : ` but the event names ${ev.signer}`));
  } catch (e) {
    if (!(e instanceof AnchorlineError)) throw e;
    add("sender-fingerprint", false, e.reason);
  }

  const record = { id: ev.id, channel: ev.channel, type: ev.type, payload: ev.payload, client_ts: ev.client_ts };
  let signing = null;
  try {
    signing = canonicalBytes(record);
    const ok = Boolean(actualFp) && (await verifySig(parsed(ev.certificate), signing, ev.signature));
    add("event-signature", ok, ok ? "ECDSA P-256 signature over the RFC 8785 event verifies" : "the signature does not match the event and the sender's key");
  } catch (e) {
    if (!(e instanceof AnchorlineError)) throw e;
    add("event-signature", false, e.reason);
  }

  let computedLeaf = null;
  try {
    // The leaf holds the signature re-encoded from its bytes, as the reference does.
    const data = leafData(record, { seq: ev.seq, signer: ev.signer, signature: toBase64(ev.signature) });
    computedLeaf = await hashLeaf(data);
    const same = toHex(computedLeaf) === toHex(proof.leafHash);
    add("leaf-hash", same, `leaf ${toHex(computedLeaf)}` + (same ? "" : ` != stated ${toHex(proof.leafHash)}`));
  } catch (e) {
    if (!(e instanceof AnchorlineError)) throw e;
    add("leaf-hash", false, e.reason);
  }

  const problems = [];
  if (ev.channel !== batch.channel) problems.push(`event channel '${ev.channel}' is not batch channel '${batch.channel}'`);
  if (batch.lastSeq - batch.firstSeq + 1 !== batch.leafCount) {
    problems.push(`batch seqs ${batch.firstSeq}..${batch.lastSeq} do not make ${batch.leafCount} leaves`);
  }
  if (inc.batchSize !== batch.leafCount) problems.push(`proof batch size ${inc.batchSize} != leaf count ${batch.leafCount}`);
  if (ev.seq !== batch.firstSeq + inc.index) problems.push(`seq ${ev.seq} is not first_seq ${batch.firstSeq} + index ${inc.index}`);
  add("sequence", problems.length === 0, problems.join("; ") || `seq ${ev.seq} is leaf ${inc.index} of ${batch.leafCount} in ${batch.batchId}`);

  if (computedLeaf === null) {
    add("inclusion", false, "no leaf hash to check");
  } else {
    const r = await verifyInclusion(inc.index, inc.batchSize, computedLeaf, inc.siblings, batch.root);
    add("inclusion", r.ok, r.detail);
  }

  const [gateway, gatewayDetail] = await verifyIdentity(trust, batch.certificate, batch.mspId, gatewayMsp ?? null, at);
  add("gateway-certificate", gateway !== null, gatewayDetail);
  try {
    const ok = await verifySig(parsed(batch.certificate), batchSigningBytes(batch), batch.signature);
    add("batch-signature", ok, ok ? "the gateway's signature over the batch record verifies" : "the batch record's signature does not verify with the gateway's key");
  } catch (e) {
    if (!(e instanceof AnchorlineError)) throw e;
    add("batch-signature", false, e.reason);
  }

  const a = proof.anchor;
  if (a === null) add("anchor-record", false, `not anchored yet (status ${proof.status})`);
  else if (a.blockNumber === null) add("anchor-record", false, `transaction ${a.txId} not yet committed in a block`);
  else add("anchor-record", true, `tx ${a.txId} in block ${a.blockNumber} of ${a.fabricChannel} (${a.chaincode})`);

  return { ok: checks.length > 0 && checks.every((c) => c.ok), checks, sender, gateway };
}
