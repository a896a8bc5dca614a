// The little DER (X.690) this package needs: read TLVs, and convert ECDSA signatures
// between WebCrypto's raw r||s and the DER ECDSA-Sig-Value the gateway and Fabric use.

/** P-256 group order n (FIPS 186-4 D.1.2.3); Fabric accepts only s <= n/2 ("low-S"). */
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_ORDER = P256_ORDER >> 1n;

export class DerError extends Error {}

/**
 * One TLV of `bytes` at `offset`: `{tag, start, header, length, end, value}` where
 * `value` is the content bytes, `start..end` the whole element.
 */
export function readTlv(bytes, offset = 0) {
  if (offset + 2 > bytes.length) throw new DerError("truncated DER element");
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte DER tags are not supported");
  let len = bytes[offset + 1];
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError("unsupported DER length");
    if (offset + 2 + n > bytes.length) throw new DerError("truncated DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[offset + 2 + i];
    // DER: the shortest length form only (as OpenSSL, behind the gateway's checks).
    if (len < 128 || bytes[offset + 2] === 0) throw new DerError("non-minimal DER length");
    header += n;
  }
  const end = offset + header + len;
  if (end > bytes.length) throw new DerError("DER element runs past its container");
  return { tag, start: offset, header, length: len, end, value: bytes.subarray(offset + header, end) };
}

/** The child TLVs of a constructed element's content. */
export function children(content) {
  const out = [];
  let i = 0;
  while (i < content.length) {
    const t = readTlv(content, i);
    out.push(t);
    i = t.end;
  }
  return out;
}

/** The whole encoding of a TLV (tag, length and content). */
export function raw(bytes, tlv) {
  return bytes.subarray(tlv.start, tlv.end);
}

export function bytesToBigInt(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bigIntToBytes(n, size) {
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function derInteger(n) {
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  let body = Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16)));
  if (body[0] & 0x80) body = Uint8Array.of(0, ...body);
  return Uint8Array.of(0x02, body.length, ...body);
}

/** WebCrypto's raw `r || s` (64 bytes for P-256) to DER, with `s` normalised to low-S. */
export function rawToDer(rawSig, { lowS = true } = {}) {
  const half = rawSig.length / 2;
  const r = bytesToBigInt(rawSig.subarray(0, half));
  let s = bytesToBigInt(rawSig.subarray(half));
  if (lowS && s > HALF_ORDER) s = P256_ORDER - s;
  const ri = derInteger(r);
  const si = derInteger(s);
  return Uint8Array.of(0x30, ri.length + si.length, ...ri, ...si);
}

/** DER ECDSA-Sig-Value to raw `r || s` of `size` bytes each; `null` when not that shape. */
export function derToRaw(der, size = 32) {
  try {
    const seq = readTlv(der, 0);
    if (seq.tag !== 0x30 || seq.end !== der.length) return null;
    const parts = children(seq.value);
    if (parts.length !== 2 || parts[0].tag !== 0x02 || parts[1].tag !== 0x02) return null;
    for (const p of parts) {
      const v = p.value;
      // A DER INTEGER is minimal and here positive: OpenSSL refuses anything else.
      if (!v.length || v[0] & 0x80 || (v[0] === 0 && (v.length === 1 || !(v[1] & 0x80)))) return null;
    }
    const r = bytesToBigInt(parts[0].value);
    const s = bytesToBigInt(parts[1].value);
    const limit = 1n << BigInt(size * 8);
    if (r <= 0n || s <= 0n || r >= limit || s >= limit) return null;
    const out = new Uint8Array(size * 2);
    out.set(bigIntToBytes(r, size), 0);
    out.set(bigIntToBytes(s, size), size);
    return out;
  } catch (e) {
    if (e instanceof DerError) return null;
    throw e;
  }
}

/** Whether a DER P-256 signature's `s` is in the lower half of the group order. */
export function isLowS(der) {
  const rawSig = derToRaw(der, 32);
  return rawSig !== null && bytesToBigInt(rawSig.subarray(32)) <= HALF_ORDER;
}

const OID_CACHE = new Map();

/** An OBJECT IDENTIFIER's content bytes as dotted text. */
export function oid(content) {
  const key = content.join(",");
  const hit = OID_CACHE.get(key);
  if (hit) return hit;
  const parts = [];
  let n = 0;
  for (let i = 0; i < content.length; i++) {
    n = n * 128 + (content[i] & 0x7f);
    if (!(content[i] & 0x80)) {
      if (parts.length === 0) {
        const first = n < 80 ? Math.floor(n / 40) : 2;
        parts.push(first, n - first * 40);
      } else {
        parts.push(n);
      }
      n = 0;
    }
  }
  const text = parts.join(".");
  OID_CACHE.set(key, text);
  return text;
}
