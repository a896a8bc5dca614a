// Type declarations of @anchorline/client (hand-written; the package is plain ES modules).

/** An error with the gateway's stable code (docs/errors.md), e.g. "AL1505", "AL1604". */
export class AnchorlineError extends Error {
  constructor(code: string, message: string, extra?: { status?: number; details?: Record<string, unknown>; cause?: unknown });
  readonly code: string;
  /** The message without the code prefix. */
  readonly reason: string;
  /** The HTTP status, for REST refusals. */
  readonly status?: number;
  /** Extra fields of the gateway's error body (e.g. `retry_after` in ms for AL1607/AL1610, `retry_after_s` for AL1510, `field`, `id`, `seq`). */
  readonly details: Record<string, unknown>;
  static fromBody(body: unknown, status?: number): AnchorlineError;
}
/** AL12xx: a certificate was refused (unknown CA, expired, revoked…). */
export class IdentityError extends AnchorlineError {}
/** AL15xx: login, token or access refused. */
export class AuthError extends AnchorlineError {}
/** AL16xx: an event was refused (malformed, too large, bad signature, not joined…). */
export class EventError extends AnchorlineError {}
/** AL17xx, AL18xx: the trust path or a proof (no proof yet, malformed proof…). */
export class ProofError extends AnchorlineError {}
/** AL1003 (no answer in time), AL1506 when this client is not connected. */
export class ConnectionError extends AnchorlineError {}
/** The error class of an AL code's family. */
export function errorClassFor(code: string): typeof AnchorlineError;
/** Whether a refusal with this code may succeed when retried as is, after a pause. */
export function isRetryable(code: string): boolean;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** RFC 8785 canonical JSON text; throws AnchorlineError AL1601 for values JSON cannot carry. */
export function canonicalize(value: unknown): string;
/** RFC 8785 canonical JSON as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Uint8Array;

export class Certificate {
  constructor(der: Uint8Array);
  static from(data: string | Uint8Array | Certificate): Certificate;
  static all(data: string | Uint8Array | Certificate): Certificate[];
  readonly der: Uint8Array;
  readonly subject: string;
  readonly issuer: string;
  readonly serial: bigint;
  /** Validity bounds, Unix milliseconds. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly commonName: string;
  /** Hex SHA-256 of the DER encoding (the gateway's fingerprint). */
  fingerprint(): Promise<string>;
  publicKey(): Promise<CryptoKey>;
  /** Fabric CA attributes (`anchorline.role`, `hf.EnrollmentID`, ...). */
  attributes(): Record<string, string>;
}

export class Crl {
  constructor(der: Uint8Array);
  static all(data: string | Uint8Array): Crl[];
  readonly revoked: Map<bigint, number>;
}

export interface VerifiedIdentity {
  mspId: string;
  role: string | null;
  fingerprint: string;
  subject: string;
  notAfter: number;
  enrollmentId: string;
}

/** Trusted CAs and CRLs of the consortium's MSPs; verify() checks as the gateway does. */
export class TrustStore {
  addCa(
    mspId: string,
    caCertificate: string | Uint8Array,
    options?: { intermediates?: Array<string | Uint8Array>; crls?: Array<string | Uint8Array> },
  ): this;
  readonly mspIds: string[];
  /** Rejects with AL1203, AL1204, AL1205, AL1206, AL1207 or AL1208. */
  verify(certificate: string | Uint8Array | Certificate, options?: { at?: number | Date; mspId?: string }): Promise<VerifiedIdentity>;
}

export class Identity {
  constructor(certificate: Certificate, privateKey: CryptoKey, mspId?: string);
  /** From the PEM texts of an MSP folder's signcerts/ and keystore/ (PKCS#8 or SEC1). */
  static fromPem(certificatePem: string, privateKeyPem: string, mspId?: string): Promise<Identity>;
  /** From a certificate and an ECDSA P-256 CryptoKey the app holds (may be non-extractable). */
  static fromCryptoKey(certificate: string | Uint8Array | Certificate, privateKey: CryptoKey, mspId?: string): Identity;
  readonly certificate: Certificate;
  readonly certificatePem: string;
  readonly privateKey: CryptoKey;
  readonly mspId?: string;
  fingerprint(): Promise<string>;
  /** DER, low-S ECDSA P-256 signature over SHA-256(message). */
  sign(message: string | Uint8Array): Promise<Uint8Array>;
  /** The same, as standard base64 (the wire form). */
  signBase64(message: string | Uint8Array): Promise<string>;
}
export function pkcs8FromPem(pem: string): Uint8Array;

/** What the gateway receives: the five signed fields and the signature. */
export interface SignedEvent {
  id: string;
  channel: string;
  type: string;
  payload: Json;
  client_ts: number;
  signature: string;
}
export function signEvent(
  identity: Identity,
  event: { channel: string; type: string; payload: Json; id?: string; clientTs?: number },
): Promise<SignedEvent>;

/** A stored event as the gateway sends it (live or catch-up). */
export interface StoredEvent {
  id: string;
  channel: string;
  seq: number;
  type: string;
  payload: Json;
  client_ts: number;
  signer: string;
  msp_id: string;
  signature: string;
  received_at: number;
  status: Status;
}

export type Status = "pending" | "confirmed" | "finalized";
export const STATUSES: readonly Status[];

export interface StatusUpdate {
  channel: string;
  seqs: number[];
  status: Status;
  tx_id: string | null;
  block_number: number | null;
}

export interface EventStatus {
  channel: string;
  seq: number;
  status: Status;
  tx_id: string | null;
  block_number: number | null;
}

export class Ack {
  readonly id: string;
  readonly channel: string;
  readonly seq: number;
  /** "pending" (stored now) or "duplicate" (stored before under this id). */
  readonly status: "pending" | "duplicate";
  readonly duplicate: boolean;
  settled(status?: "confirmed" | "finalized", options?: { timeoutMs?: number }): Promise<EventStatus>;
}

export interface Session {
  sessionId: string;
  token: string;
  expiresAt: number;
  refreshToken: string;
  fingerprint: string;
  mspId: string;
  role: string;
  localExpiry: number;
}

/** Where the client keeps the last seq per channel (MemoryStorage, LocalStorage, FileStorage). */
export interface SeqStorage {
  get(channel: string): number | undefined | Promise<number | undefined>;
  set(channel: string, seq: number): void | Promise<void>;
}
export class MemoryStorage implements SeqStorage {
  constructor(initial?: Record<string, number>);
  get(channel: string): number | undefined;
  set(channel: string, seq: number): void;
}
export class LocalStorage implements SeqStorage {
  constructor(prefix?: string, storage?: Storage);
  get(channel: string): number | undefined;
  set(channel: string, seq: number): void;
}

export interface JoinResult {
  channel: string;
  joined: boolean;
  last_seq: number;
  can_emit: boolean;
}

export interface ClientEvents {
  event: StoredEvent;
  status: StatusUpdate;
  kicked: { channel: string; code: string; message: string };
  session_expired: { reason: string };
  session: Session;
  refreshed: { expires_at: number };
  connect: Record<string, never>;
  disconnect: { reason: string };
  resumed: { channels: Record<string, JoinResult | { error: { code: string; message: string } }> };
  error: AnchorlineError;
}

export interface ClientOptions {
  storage?: SeqStorage;
  /** socket.io-client's `io` (default: `import("socket.io-client")`). */
  io?: (url: string, options: object) => unknown;
  refreshMarginMs?: number;
  ackTimeoutMs?: number;
  reconnectWaitMs?: number;
}

export class AnchorlineClient {
  constructor(url: string, identity: Identity, options?: ClientOptions);
  readonly url: string;
  readonly identity: Identity;
  readonly session: Session | null;
  /** The socket.io-client Socket (for tests: `client.socket.io.engine.close()` drops it). */
  readonly socket: any;
  readonly connected: boolean;
  readonly reconnects: number;
  on<K extends keyof ClientEvents>(name: K, handler: (data: ClientEvents[K]) => void): () => void;
  once<K extends keyof ClientEvents>(name: K, handler: (data: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(name: K, handler: (data: ClientEvents[K]) => void): void;
  login(): Promise<Session>;
  refresh(): Promise<Session>;
  logout(): Promise<void>;
  connect(): Promise<void>;
  join(channel: string, options?: { after?: number }): Promise<JoinResult>;
  leave(channel: string): Promise<{ channel: string; left: true }>;
  resume(): Promise<ClientEvents["resumed"]>;
  lastSeq(channel: string): number | undefined;
  emit(channel: string, type: string, payload: Json, options?: { id?: string }): Promise<Ack>;
  emitSigned(event: SignedEvent): Promise<Ack>;
  waitForStatus(channel: string, seq: number, status?: "confirmed" | "finalized", options?: { timeoutMs?: number }): Promise<EventStatus>;
  get(path: string): Promise<any>;
  proof(channel: string, seq: number): Promise<ProofDocument>;
  close(): Promise<void>;
}

/** docs/proof-format.md, `anchorline.event-proof/1`. */
export interface ProofDocument {
  format: "anchorline.event-proof/1";
  status: Status;
  event: {
    record: { id: string; channel: string; type: string; payload: Json; client_ts: number };
    seq: number;
    signer: string;
    signature: string;
    certificate: string;
    msp_id?: string;
  };
  leaf_hash: string;
  inclusion: { index: number; batch_size: number; siblings: string[] };
  batch: {
    batch_id: string;
    channel: string;
    root: string;
    leaf_count: number;
    first_seq: number;
    last_seq: number;
    prev_root: string;
    signature: string;
    certificate: string;
    msp_id?: string;
  };
  anchor: { tx_id: string; block_number: number | null; fabric_channel: string; chaincode: string } | null;
}

export type CheckName =
  | "sender-certificate"
  | "sender-fingerprint"
  | "event-signature"
  | "leaf-hash"
  | "sequence"
  | "inclusion"
  | "gateway-certificate"
  | "batch-signature"
  | "anchor-record";
export const CHECKS: readonly CheckName[];
export const PROOF_FORMAT: "anchorline.event-proof/1";

export interface Verdict {
  ok: boolean;
  checks: Array<{ name: CheckName; ok: boolean; detail: string }>;
  sender: VerifiedIdentity | null;
  gateway: VerifiedIdentity | null;
}
/** The offline checks of `anchorline verify --offline`; rejects with AL1840 for a malformed document. */
export function verifyProof(proof: ProofDocument | string | object, trust: TrustStore, options?: { at?: number | Date; gatewayMsp?: string }): Promise<Verdict>;
export function parseProof(proof: ProofDocument | string | object): object;
export function batchSigningBytes(batch: object): Uint8Array;

export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, path: Uint8Array[], root: Uint8Array): Promise<{ ok: boolean; computed: Uint8Array | null; detail: string }>;
export function hashLeaf(data: Uint8Array): Promise<Uint8Array>;
export function hashChildren(left: Uint8Array, right: Uint8Array): Promise<Uint8Array>;
export function leafData(record: object, fields: { seq: number; signer: string; signature: string }): Uint8Array;

export function toBase64(bytes: Uint8Array): string;
export function fromBase64(text: string): Uint8Array | null;
export function toHex(bytes: Uint8Array): string;
export function fromHex(text: string): Uint8Array | null;
export function sha256(bytes: Uint8Array): Promise<Uint8Array>;
export function rawToDer(raw: Uint8Array, options?: { lowS?: boolean }): Uint8Array;
export function derToRaw(der: Uint8Array, size?: number): Uint8Array | null;
export function isLowS(der: Uint8Array): boolean;
