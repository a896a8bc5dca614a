// A member's signing identity: its enrolment certificate and an ECDSA P-256 key that
// WebCrypto holds (imported non-extractable from PKCS#8 PEM, or a CryptoKey the app
// already has, e.g. one kept in IndexedDB). Signatures are what the gateway expects:
// ECDSA over SHA-256 of the message bytes, DER-encoded, low-S, standard base64.

import { AnchorlineError, anchorlineError } from "./errors.js";
import { canonicalBytes } from "./canonical.js";
import { concat, subtle, toBase64, utf8 } from "./bytes.js";
import { rawToDer, readTlv } from "./der.js";
import { Certificate, pemBlocks } from "./x509.js";

// AlgorithmIdentifier {id-ecPublicKey, prime256v1}, to wrap a SEC1 key into PKCS#8.
const EC_P256_ALG = Uint8Array.of(
  0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
);

function derLength(n) {
  if (n < 128) return Uint8Array.of(n);
  if (n < 256) return Uint8Array.of(0x81, n);
  return Uint8Array.of(0x82, n >> 8, n & 255);
}

function tlv(tag, body) {
  return concat(Uint8Array.of(tag), derLength(body.length), body);
}

/** PKCS#8 DER of a PEM key: "PRIVATE KEY" as is, "EC PRIVATE KEY" (SEC1) wrapped. */
export function pkcs8FromPem(pem) {
  const [pkcs8] = pemBlocks(pem, "PRIVATE KEY");
  if (pkcs8) return pkcs8;
  const [sec1] = pemBlocks(pem, "EC PRIVATE KEY");
  if (sec1) {
    readTlv(sec1, 0);
    return tlv(0x30, concat(Uint8Array.of(0x02, 0x01, 0x00), EC_P256_ALG, tlv(0x04, sec1)));
  }
  throw anchorlineError("AL1002", "no PEM private key found (expected a PKCS#8 'PRIVATE KEY' or an 'EC PRIVATE KEY' block)");
}

export class Identity {
  /**
   * @param {Certificate} certificate  the enrolment certificate
   * @param {CryptoKey} privateKey  an ECDSA P-256 private key with usage "sign"
   * @param {string} [mspId]  the member's MSP id (informational)
   */
  constructor(certificate, privateKey, mspId) {
    if (!privateKey || privateKey.type !== "private" || privateKey.algorithm?.name !== "ECDSA") {
      throw anchorlineError("AL1002", "the identity needs an ECDSA P-256 private CryptoKey with usage 'sign'");
    }
    if (privateKey.algorithm.namedCurve !== "P-256") {
      throw anchorlineError("AL1002", `Fabric identities here use P-256 keys; got curve ${privateKey.algorithm.namedCurve}`);
    }
    this.certificate = certificate;
    this.privateKey = privateKey;
    this.mspId = mspId;
    const pem = toBase64(certificate.der).replace(/.{1,64}/g, "$&\n");
    this.certificatePem = `-----BEGIN CERTIFICATE-----\n${pem}-----END CERTIFICATE-----\n`;
  }

  /** From PEM texts: the certificate (signcerts/) and the key (keystore/, PKCS#8 or SEC1). */
  static async fromPem(certificatePem, privateKeyPem, mspId) {
    const certificate = Certificate.from(certificatePem);
    let key;
    try {
      key = await subtle().importKey("pkcs8", pkcs8FromPem(privateKeyPem), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    } catch (e) {
      if (e instanceof AnchorlineError) throw e;
      throw anchorlineError("AL1002", `not a usable P-256 private key: ${e.message}`, { cause: e });
    }
    const identity = new Identity(certificate, key, mspId);
    identity.certificatePem = certificatePem.includes("-----BEGIN CERTIFICATE-----") ? certificatePem : identity.certificatePem;
    return identity;
  }

  /** From a certificate (PEM or DER) and a CryptoKey the app holds (may be non-extractable). */
  static fromCryptoKey(certificate, privateKey, mspId) {
    const cert = certificate instanceof Certificate ? certificate : Certificate.from(certificate);
    return new Identity(cert, privateKey, mspId);
  }

  fingerprint() {
    return this.certificate.fingerprint();
  }

  /** DER, low-S ECDSA P-256 signature over SHA-256(`message`). */
  async sign(message) {
    const bytes = typeof message === "string" ? utf8(message) : message;
    const rawSig = new Uint8Array(await subtle().sign({ name: "ECDSA", hash: "SHA-256" }, this.privateKey, bytes));
    return rawToDer(rawSig);
  }

  /** The signature of `message` in the wire form: standard base64 of the DER signature. */
  async signBase64(message) {
    return toBase64(await this.sign(message));
  }
}

function newEventId() {
  const c = globalThis.crypto;
  return c.randomUUID ? c.randomUUID().replace(/-/g, "") : Array.from(c.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The gateway refuses every whole number beyond ±(2**53 − 1) (AL1015): RFC 8785 writes
// those below 1e21 as plain digits, an integer I-JSON cannot carry, and the larger
// ones as exponents that no reader can tell from an integer it rounded.
function findUnsendable(value, depth = 0) {
  if (typeof value === "number") {
    return Number.isInteger(value) && Math.abs(value) > Number.MAX_SAFE_INTEGER ? value : undefined;
  }
  if (value && typeof value === "object" && depth < 256) {
    for (const item of Array.isArray(value) ? value : Object.values(value)) {
      const found = findUnsendable(item, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * The wire form of an event signed by `identity`: `{id, channel, type, payload,
 * client_ts, signature}`, the signature over the RFC 8785 bytes of the first five.
 * Usable offline (sign now, send later with client.emitSigned). Rejects with AL1601 when
 * the payload cannot be canonicalised, and with AL1015 (as the gateway would) when it
 * holds a whole number beyond ±(2**53 − 1).
 */
export async function signEvent(identity, { channel, type, payload, id, clientTs }) {
  const unsendable = findUnsendable(payload);
  if (unsendable !== undefined) {
    throw anchorlineError("AL1015", `the payload holds ${unsendable}, a whole number beyond ±(2**53 − 1) that the gateway cannot canonicalise: send it as a string`);
  }
  const body = {
    id: id ?? newEventId(),
    channel,
    type,
    payload,
    client_ts: clientTs ?? Date.now(),
  };
  const signature = await identity.signBase64(canonicalBytes(body));
  return { ...body, signature };
}
