// Errors of the client: one type, carrying the gateway's stable AL code (docs/errors.md).
//
// Refusals from the gateway keep its own code (`AL1505`, `AL1604`…) and HTTP status;
// failures found on this side use the gateway's code for the same condition (AL1506
// not connected, AL1601 an event that cannot be canonicalised, AL1840 a malformed proof
// document). `AL1003` means the gateway did not answer as the protocol says (timeout,
// unexpected reply).

export class AnchorlineError extends Error {
  /**
   * @param {string} code  the stable AL code
   * @param {string} message  what went wrong and what to do
   * @param {{status?: number, details?: object, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(`${code}: ${message}`, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.reason = message;
    this.status = extra.status;
    this.details = extra.details || {};
  }

  /**
   * The error of a gateway body `{code, message}` (REST body or Socket.IO ack `error`),
   * as the subclass of its code's family (see `errorClassFor`).
   */
  static fromBody(body, status) {
    const code = body && typeof body.code === "string" ? body.code : "AL1003";
    const message = body && typeof body.message === "string" ? body.message : `gateway answered ${status ?? "an error"}`;
    const details = body && typeof body === "object" ? { ...body } : {};
    delete details.code;
    delete details.message;
    const Class = errorClassFor(code);
    return new Class(code, message, { status, details });
  }
}

/** AL12xx: a certificate was refused (unknown CA, expired, revoked…): re-enrol or fix the MSP. */
export class IdentityError extends AnchorlineError {}
/** AL15xx: login, token or access refused: log in again, refresh, or ask for access. */
export class AuthError extends AnchorlineError {}
/** AL16xx: an event was refused (malformed, too large, bad signature, not joined…). */
export class EventError extends AnchorlineError {}
/** AL17xx and AL18xx: the trust path or a proof (no proof yet, proof malformed…). */
export class ProofError extends AnchorlineError {}
/** AL1003 (no answer in time), and AL1506 when this client is not connected: retry. */
export class ConnectionError extends AnchorlineError {}

const FAMILIES = [
  [/^AL12/, IdentityError],
  [/^AL15/, AuthError],
  [/^AL16/, EventError],
  [/^AL1[78]/, ProofError],
  [/^AL1003$/, ConnectionError],
];

/** The error class of an AL code's family (AnchorlineError when it has none). */
export function errorClassFor(code) {
  for (const [re, Class] of FAMILIES) if (re.test(code)) return Class;
  return AnchorlineError;
}

/** An error of `code`, as the subclass of its family. */
export function anchorlineError(code, message, extra) {
  const Class = errorClassFor(code);
  return new Class(code, message, extra);
}

/** Whether a refusal with this code is worth retrying as is, after a pause. */
export function isRetryable(code) {
  return code === "AL1510" || code === "AL1606" || code === "AL1607" || code === "AL1701" || code === "AL1702" || code === "AL1003";
}
