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
    this.name = "AnchorlineError";
    this.code = code;
    this.reason = message;
    this.status = extra.status;
    this.details = extra.details || {};
  }

  /** The error of a gateway body `{code, message}` (REST body or Socket.IO ack `error`). */
  static fromBody(body, status) {
    const code = body && typeof body.code === "string" ? body.code : "AL1003";
    const message = body && typeof body.message === "string" ? body.message : `gateway answered ${status ?? "an error"}`;
    const details = body && typeof body === "object" ? { ...body } : {};
    delete details.code;
    delete details.message;
    return new AnchorlineError(code, message, { status, details });
  }
}

/** Whether a refusal with this code is worth retrying as is, after a pause. */
export function isRetryable(code) {
  return code === "AL1510" || code === "AL1606" || code === "AL1607" || code === "AL1701" || code === "AL1702" || code === "AL1003";
}
