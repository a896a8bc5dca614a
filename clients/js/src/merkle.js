// RFC 6962 / RFC 9162 hashing and inclusion verification with SHA-256, and the
// version-1 leaf of an Anchorline batch (docs/proof-format.md).

import { canonicalBytes } from "./canonical.js";
import { concat, equal, sha256, toHex } from "./bytes.js";

export const SIGNED_FIELDS = ["id", "channel", "type", "payload", "client_ts"];

export function hashLeaf(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export function hashChildren(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

/** The five signed fields of an event record. */
export function signedBody(record) {
  const out = {};
  for (const f of SIGNED_FIELDS) out[f] = record[f];
  return out;
}

/** Version-1 leaf bytes: JCS({event, seq, signer, signature, v: 1}). */
export function leafData(record, { seq, signer, signature }) {
  return canonicalBytes({ event: signedBody(record), seq, signer, signature, v: 1 });
}

/**
 * RFC 9162 §2.1.3.2: whether `path` leads from `leafHash` at `index` of a tree of `size`
 * leaves to `root`. Returns `{ok, computed, detail}`.
 */
export async function verifyInclusion(index, size, leafHash, path, root) {
  for (const [i, h] of path.entries()) {
    if (h.length !== 32) return { ok: false, computed: null, detail: `proof hash ${i} is ${h.length} bytes; a SHA-256 hash is 32 bytes` };
  }
  if (leafHash.length !== 32 || root.length !== 32) {
    return { ok: false, computed: null, detail: "the leaf hash and the root must be 32-byte SHA-256 hashes" };
  }
  if (!(index < size)) return { ok: false, computed: null, detail: `leaf index out of range: index ${index} must be below tree size ${size}` };
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0) return { ok: false, computed: null, detail: `wrong proof size: got ${path.length} hashes, too many for index ${index} of ${size}` };
    if (fn % 2 === 1 || fn === sn) {
      r = await hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, computed: null, detail: `wrong proof size: got ${path.length} hashes, too few for index ${index} of ${size}` };
  if (!equal(r, root)) return { ok: false, computed: r, detail: `root mismatch: expected ${toHex(root)}, computed ${toHex(r)}` };
  return { ok: true, computed: r, detail: `${path.length} siblings lead to ${toHex(root)}` };
}
