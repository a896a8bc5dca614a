// @anchorline/client: everything a member or auditor app imports.
export { AnchorlineClient, Ack, STATUSES } from "./client.js";
export { Identity, signEvent, pkcs8FromPem } from "./identity.js";
export { canonicalize, canonicalBytes } from "./canonical.js";
export {
  AnchorlineError,
  IdentityError,
  AuthError,
  EventError,
  ProofError,
  ConnectionError,
  errorClassFor,
  isRetryable,
} from "./errors.js";
export { MemoryStorage, LocalStorage } from "./storage.js";
export { Certificate, Crl, TrustStore } from "./x509.js";
export { verifyProof, parseProof, batchSigningBytes, CHECKS, PROOF_FORMAT } from "./proof.js";
export { verifyInclusion, hashLeaf, hashChildren, leafData } from "./merkle.js";
export { toBase64, fromBase64, toHex, fromHex, sha256 } from "./bytes.js";
export { rawToDer, derToRaw, isLowS } from "./der.js";
