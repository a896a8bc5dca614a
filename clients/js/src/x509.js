// Minimal X.509 for Fabric MSP identities: parse certificates and CRLs (DER/PEM), and a
// TrustStore whose verify() makes the same checks, in the same order, with the same AL
// codes as the gateway's gateway.identity.certificates.TrustStore.verify:
// chain (issuer name and signature) to a CA of a trusted MSP → validity of the
// certificate and of its chain → digitalSignature key usage → CRL of each issuer.
//
// Only what Fabric MSPs use is supported: ECDSA CAs (P-256 or P-384, ecdsa-with-SHA256
// or -SHA384). Written here rather than taken from an ASN.1 library so the package has
// no dependency besides socket.io-client and loads unbundled in a <script type="module">.

import { anchorlineError } from "./errors.js";
import { children, derToRaw, oid, raw, readTlv, bytesToBigInt, DerError } from "./der.js";
import { equal, fromBase64, fromUtf8, sha256, subtle, toHex } from "./bytes.js";

export const ATTRIBUTES_OID = "1.2.3.4.5.6.7.8.1";
export const ROLE_ATTRIBUTE = "anchorline.role";
const KEY_USAGE_OID = "2.5.29.15";
const MAX_CHAIN_DEPTH = 8;

const SIG_ALGS = {
  "1.2.840.10045.4.3.2": "SHA-256",
  "1.2.840.10045.4.3.3": "SHA-384",
};
const CURVES = {
  "1.2.840.10045.3.1.7": { name: "P-256", size: 32 },
  "1.3.132.0.34": { name: "P-384", size: 48 },
};
const NAME_KEYS = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
};

function parseError(message) {
  return anchorlineError("AL1201", `not an X.509 certificate in PEM or DER form (${message})`);
}

/** Every base64 block between `-----BEGIN <label>-----` and its END line, decoded. */
export function pemBlocks(text, label) {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const out = [];
  for (const m of text.matchAll(re)) {
    const body = fromBase64(m[1].replace(/\s+/g, ""));
    if (body === null) throw parseError(`bad base64 in a ${label} block`);
    out.push(body);
  }
  return out;
}

function time(bytes, tlv) {
  const s = fromUtf8(tlv.value);
  let m;
  if (tlv.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    return Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, m[2] - 1, m[3], m[4], m[5], m[6]);
  }
  if (tlv.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    return Date.UTC(Number(m[1]), m[2] - 1, m[3], m[4], m[5], m[6]);
  }
  throw new DerError(`unsupported time ${s}`);
}

function nameText(nameTlv) {
  // RFC 4514 order: the last RDN first.
  const rdns = children(nameTlv.value).map((set) =>
    children(set.value)
      .map((atv) => {
        const [type, value] = children(atv.value);
        const key = NAME_KEYS[oid(type.value)] || oid(type.value);
        const text = fromUtf8(value.value).replace(/([,+"\\<>;])/g, "\\$1");
        return `${key}=${text}`;
      })
      .join("+"),
  );
  return rdns.reverse().join(",");
}

function algorithm(tlv) {
  const [alg] = children(tlv.value);
  return oid(alg.value);
}

function bitString(tlv) {
  if (tlv.tag !== 0x03 || tlv.value.length < 1) throw new DerError("expected a BIT STRING");
  return tlv.value.subarray(1);
}

/** A parsed certificate; `der` is its encoding, `tbs` the signed part. */
export class Certificate {
  constructor(der) {
    try {
      const top = readTlv(der, 0);
      if (top.tag !== 0x30 || top.end !== der.length) throw new DerError("not one DER SEQUENCE");
      const [tbs, sigAlg, sig] = children(top.value);
      this.der = der;
      this.tbs = raw(top.value, tbs);
      this.signatureHash = SIG_ALGS[algorithm(sigAlg)] || null;
      this.signature = bitString(sig);
      let fields = children(tbs.value);
      if (fields[0].tag === 0xa0) fields = fields.slice(1);
      const [serial, , issuer, validity, subject, spki, ...rest] = fields;
      this.serial = bytesToBigInt(serial.value);
      this.issuerDer = raw(tbs.value, issuer);
      this.subjectDer = raw(tbs.value, subject);
      this.issuer = nameText(issuer);
      this.subject = nameText(subject);
      const [nb, na] = children(validity.value);
      this.notBefore = time(validity.value, nb);
      this.notAfter = time(validity.value, na);
      this.spki = raw(tbs.value, spki);
      const [spkiAlg] = children(spki.value);
      const algParts = children(spkiAlg.value);
      this.curve = algParts.length > 1 && algParts[1].tag === 0x06 ? CURVES[oid(algParts[1].value)] || null : null;
      this.extensions = new Map();
      for (const field of rest) {
        if (field.tag !== 0xa3) continue;
        const [list] = children(field.value);
        for (const ext of children(list.value)) {
          const parts = children(ext.value);
          const value = parts[parts.length - 1];
          this.extensions.set(oid(parts[0].value), value.value);
        }
      }
    } catch (e) {
      if (e instanceof DerError || e instanceof TypeError || e instanceof RangeError) throw parseError(e.message);
      throw e;
    }
    this._key = null;
  }

  /** One certificate from PEM text or DER bytes (the first of a PEM bundle). */
  static from(data) {
    return Certificate.all(data)[0];
  }

  /** Every certificate of a PEM bundle (or the one DER certificate). */
  static all(data) {
    if (data instanceof Certificate) return [data];
    if (typeof data === "string") {
      const blocks = pemBlocks(data, "CERTIFICATE");
      if (!blocks.length) throw parseError("no CERTIFICATE block");
      return blocks.map((b) => new Certificate(b));
    }
    return [new Certificate(new Uint8Array(data))];
  }

  /** Lower-case hex SHA-256 of the DER encoding (the gateway's fingerprint). */
  async fingerprint() {
    if (!this._fingerprint) this._fingerprint = toHex(await sha256(this.der));
    return this._fingerprint;
  }

  /** The certificate's public key as a WebCrypto ECDSA verification key. */
  async publicKey() {
    if (!this.curve) throw anchorlineError("AL1512", "the certificate's key is not a P-256 or P-384 elliptic-curve key");
    if (!this._key) {
      this._key = subtle().importKey("spki", this.spki, { name: "ECDSA", namedCurve: this.curve.name }, true, ["verify"]);
    }
    return this._key;
  }

  /** Fabric CA attributes (`{}` when the extension is absent); AL1201 when not JSON. */
  attributes() {
    const value = this.extensions.get(ATTRIBUTES_OID);
    if (!value) return {};
    let doc;
    try {
      doc = JSON.parse(fromUtf8(value));
    } catch {
      throw anchorlineError("AL1201", `attribute extension ${ATTRIBUTES_OID} is not JSON`);
    }
    if (!doc || typeof doc.attrs !== "object" || doc.attrs === null || Array.isArray(doc.attrs)) {
      throw anchorlineError("AL1201", `attribute extension ${ATTRIBUTES_OID} lacks an "attrs" object`);
    }
    return Object.fromEntries(Object.entries(doc.attrs).map(([k, v]) => [k, String(v)]));
  }

  /** Why this certificate may not sign, or `null` when its key usage has digitalSignature. */
  keyUsageError() {
    const value = this.extensions.get(KEY_USAGE_OID);
    if (!value) return `no digital-signature key usage: ${this.subject} has no key usage extension`;
    const bits = bitString(readTlv(value, 0));
    if (!bits.length || !(bits[0] & 0x80)) {
      return `no digital-signature key usage: the key usage of ${this.subject} does not include digitalSignature`;
    }
    return null;
  }

  get commonName() {
    const m = /(?:^|,)CN=((?:\\.|[^,\\])*)/.exec(this.subject);
    return m ? m[1].replace(/\\(.)/g, "$1") : "";
  }
}

/** A parsed CRL: the issuer, the signed part, and the revoked serials. */
export class Crl {
  constructor(der) {
    try {
      const top = readTlv(der, 0);
      const [tbs, sigAlg, sig] = children(top.value);
      this.tbs = raw(top.value, tbs);
      this.signatureHash = SIG_ALGS[algorithm(sigAlg)] || null;
      this.signature = bitString(sig);
      let fields = children(tbs.value);
      if (fields[0].tag === 0x02) fields = fields.slice(1); // version
      this.issuerDer = raw(tbs.value, fields[1]);
      this.revoked = new Map();
      for (const f of fields.slice(3)) {
        if (f.tag !== 0x30) continue; // nextUpdate is a time; [0] are the extensions
        for (const entry of children(f.value)) {
          const [serial, date] = children(entry.value);
          this.revoked.set(bytesToBigInt(serial.value), time(entry.value, date));
        }
      }
    } catch (e) {
      if (e instanceof DerError || e instanceof TypeError) {
        throw anchorlineError("AL1209", `not a CRL in PEM or DER form (${e.message})`);
      }
      throw e;
    }
  }

  static all(data) {
    if (typeof data === "string") return pemBlocks(data, "X509 CRL").map((b) => new Crl(b));
    return [new Crl(new Uint8Array(data))];
  }
}

/** Whether `issuer`'s key made the signature over `signed.tbs`. */
export async function signedBy(signed, issuer) {
  if (!signed.signatureHash || !issuer.curve) return false;
  const rawSig = derToRaw(signed.signature, issuer.curve.size);
  if (rawSig === null) return false;
  try {
    const key = await issuer.publicKey();
    return await subtle().verify({ name: "ECDSA", hash: signed.signatureHash }, key, rawSig, signed.tbs);
  } catch {
    return false;
  }
}

function iso(ms) {
  return new Date(ms).toISOString().replace(".000Z", "+00:00");
}

/**
 * Trusted CAs (roots and intermediates) and CRLs of one or more MSPs, keyed by MSP id.
 * Build with addCa(mspId, caPem, {intermediates, crls}); in Node, trustFromMspDirs() in
 * "@anchorline/client/file-storage" reads MSP folders.
 */
export class TrustStore {
  constructor() {
    this.msps = new Map();
    this._chains = new Map();
  }

  /** Trust one more root CA (and optional intermediates and CRLs, PEM or DER) for `mspId`. */
  addCa(mspId, caCert, { intermediates = [], crls = [] } = {}) {
    const msp = this.msps.get(mspId) || { mspId, roots: [], intermediates: [], crls: [] };
    msp.roots.push(...Certificate.all(caCert));
    for (const c of intermediates) msp.intermediates.push(...Certificate.all(c));
    for (const c of crls) msp.crls.push(...Crl.all(c));
    msp.revoked = null;
    this.msps.set(mspId, msp);
    this._chains.clear();
    return this;
  }

  get mspIds() {
    return [...this.msps.keys()].sort();
  }

  async _revoked(msp) {
    if (msp.revoked) return msp.revoked;
    const revoked = new Map();
    for (const crl of msp.crls) {
      for (const ca of [...msp.roots, ...msp.intermediates]) {
        if (equal(crl.issuerDer, ca.subjectDer) && (await signedBy(crl, ca))) {
          const entries = revoked.get(ca) || new Map();
          for (const [serial, date] of crl.revoked) entries.set(serial, date);
          revoked.set(ca, entries);
        }
      }
    }
    msp.revoked = revoked;
    return revoked;
  }

  async _chain(cert, candidates, mspId) {
    let badSignature = null;
    for (const msp of candidates) {
      const chain = [];
      let current = cert;
      const cas = [...msp.roots, ...msp.intermediates];
      for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
        const issuers = cas.filter((ca) => equal(ca.subjectDer, current.issuerDer));
        if (!issuers.length) break;
        let signer = null;
        for (const ca of issuers) {
          if (await signedBy(current, ca)) {
            signer = ca;
            break;
          }
        }
        if (!signer) {
          badSignature = `certificate ${current.subject} names ${current.issuer} of ${msp.mspId} as issuer, but its signature does not verify with that CA's key`;
          break;
        }
        chain.push(signer);
        if (msp.roots.includes(signer)) return { msp, chain };
        current = signer;
      }
    }
    if (badSignature) throw anchorlineError("AL1208", `bad certificate chain: ${badSignature}`);
    const where = mspId ? `MSP ${mspId}` : "any trusted MSP";
    throw anchorlineError("AL1203", `unknown CA: issuer ${cert.issuer} of ${cert.subject} is not a CA of ${where}`);
  }

  /**
   * Check `cert` (PEM, DER or Certificate) against the trusted MSPs at `at` (ms or Date;
   * default now), of `mspId` only when given. Resolves to
   * `{mspId, role, fingerprint, subject, notAfter, enrollmentId}`; rejects with an
   * IdentityError: AL1203 unknown CA, AL1208 bad chain, AL1204 expired, AL1205 not yet
   * valid, AL1207 no digitalSignature usage, AL1206 revoked.
   */
  async verify(cert, { at, mspId } = {}) {
    if (!(cert instanceof Certificate)) cert = Certificate.from(cert);
    const when = at === undefined ? Date.now() : at instanceof Date ? at.getTime() : at;
    if (mspId !== undefined && mspId !== null && !this.msps.has(mspId)) {
      throw anchorlineError("AL1203", `MSP '${mspId}' is not trusted here (trusted: ${this.mspIds.join(", ")})`);
    }
    // Only what cannot change for a certificate and a CA set is cached (the chain);
    // validity, key usage and revocation are checked on every call, as the gateway does.
    const key = `${await cert.fingerprint()} ${mspId || ""}`;
    let found = this._chains.get(key);
    if (!found) {
      const candidates = mspId ? [this.msps.get(mspId)] : [...this.msps.values()];
      found = await this._chain(cert, candidates, mspId);
      this._chains.set(key, found);
    }
    const stamp = iso(Math.floor(when / 1000) * 1000);
    if (when < cert.notBefore) {
      throw anchorlineError("AL1205", `certificate not yet valid: ${cert.subject} is valid from ${iso(cert.notBefore)}, checked at ${stamp}`);
    }
    if (when > cert.notAfter) {
      throw anchorlineError("AL1204", `certificate expired: ${cert.subject} was valid until ${iso(cert.notAfter)}, checked at ${stamp}`);
    }
    for (const ca of found.chain) {
      if (!(ca.notBefore <= when && when <= ca.notAfter)) {
        throw anchorlineError("AL1208", `bad certificate chain: CA certificate ${ca.subject} is outside its validity (${iso(ca.notBefore)} to ${iso(ca.notAfter)}) at ${stamp}`);
      }
    }
    const usage = cert.keyUsageError();
    if (usage) throw anchorlineError("AL1207", usage);
    const revoked = await this._revoked(found.msp);
    const subjects = [cert, ...found.chain.slice(0, -1)];
    for (let i = 0; i < subjects.length; i++) {
      const since = revoked.get(found.chain[i])?.get(subjects[i].serial);
      if (since !== undefined) {
        throw anchorlineError("AL1206", `certificate revoked: ${subjects[i].subject} (serial ${subjects[i].serial.toString(16)}) is on the CRL of ${found.chain[i].subject} since ${iso(since)}`);
      }
    }
    const attrs = cert.attributes();
    return {
      mspId: found.msp.mspId,
      role: attrs[ROLE_ATTRIBUTE] ?? null,
      fingerprint: await cert.fingerprint(),
      subject: cert.subject,
      notAfter: cert.notAfter,
      enrollmentId: attrs["hf.EnrollmentID"] || cert.commonName,
    };
  }
}
