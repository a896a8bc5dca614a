// Node-only helpers (node:fs): a file-backed last-seq storage, and reading an enrolled
// MSP folder — the identity (signcerts/ + keystore/) and the trust store (cacerts/,
// intermediatecerts/, crls/) — as the Python client and `anchorline verify` do.

import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Identity } from "./identity.js";
import { TrustStore } from "./x509.js";
import { anchorlineError } from "./errors.js";

/** Last seq per channel in one JSON file, written atomically (temp file + rename). */
export class FileStorage {
  constructor(path) {
    this.path = path;
    try {
      this.seqs = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
      this.seqs = {};
    }
  }
  get(channel) {
    return this.seqs[channel];
  }
  set(channel, seq) {
    this.seqs[channel] = seq;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.seqs));
    renameSync(tmp, this.path);
  }
}

function files(folder) {
  try {
    return readdirSync(folder)
      .filter((n) => !n.startsWith("."))
      .sort()
      .map((n) => join(folder, n))
      .filter((p) => statSync(p).isFile());
  } catch (e) {
    if (e.code === "ENOENT") return [];
    throw e;
  }
}

/** The identity of an enrolled MSP folder: signcerts/ (first file) and keystore/. */
export async function loadIdentity(mspDir, mspId) {
  const [certFile] = files(join(mspDir, "signcerts"));
  if (!certFile) throw anchorlineError("AL1209", `${mspDir}/signcerts holds no certificate`);
  const keyFile = files(join(mspDir, "keystore")).find((p) => readFileSync(p, "utf8").includes("PRIVATE KEY"));
  if (!keyFile) throw anchorlineError("AL1209", `${mspDir}/keystore holds no private key`);
  return Identity.fromPem(readFileSync(certFile, "utf8"), readFileSync(keyFile, "utf8"), mspId);
}

function pemOrDer(path) {
  const bytes = readFileSync(path);
  return bytes.includes("-----BEGIN") ? bytes.toString("utf8") : new Uint8Array(bytes);
}

/** A TrustStore of `{mspId: mspFolder}` (each folder's cacerts/, intermediatecerts/, crls/). */
export function trustFromMspDirs(dirs) {
  const trust = new TrustStore();
  for (const [mspId, folder] of Object.entries(dirs)) {
    const roots = files(join(folder, "cacerts")).map(pemOrDer);
    if (!roots.length) throw anchorlineError("AL1209", `MSP folder ${folder} for ${mspId} has no CA certificate in cacerts/`);
    const intermediates = files(join(folder, "intermediatecerts")).map(pemOrDer);
    const crls = files(join(folder, "crls")).map(pemOrDer);
    roots.forEach((pem, i) => trust.addCa(mspId, pem, i === 0 ? { intermediates, crls } : {}));
  }
  return trust;
}
