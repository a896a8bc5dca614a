// The member client: challenge login, one Socket.IO connection, signed events with ack
// promises, statuses, and resume after a reconnect (docs/member-guide.md has the wire
// protocol this implements).

import { AnchorlineError, ConnectionError, anchorlineError } from "./errors.js";
import { signEvent } from "./identity.js";
import { MemoryStorage } from "./storage.js";
import { fromBase64, fromUtf8 } from "./bytes.js";

/** Statuses of an event, in the order the trust path moves it. */
export const STATUSES = ["pending", "confirmed", "finalized"];
const RANK = { pending: 0, duplicate: 0, confirmed: 1, finalized: 2 };

function tokenLifetimeMs(token) {
  // Access tokens are `al1.<base64url(claims)>.<mac>`; claims hold iat and exp (ms).
  // Their difference, counted from when the token arrived, keeps refresh timing right
  // even when this machine's clock and the gateway's disagree.
  try {
    const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(fromUtf8(fromBase64(b64 + "=".repeat((4 - (b64.length % 4)) % 4))));
    return Number(claims.exp) - Number(claims.iat);
  } catch {
    return null;
  }
}

class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  /** Subscribe to `name`; returns a function that unsubscribes. */
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }
  off(name, fn) {
    this._handlers.get(name)?.delete(fn);
  }
  once(name, fn) {
    const off = this.on(name, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }
  _fire(name, data) {
    for (const fn of [...(this._handlers.get(name) || [])]) {
      try {
        fn(data);
      } catch (e) {
        // A failing handler must not stop the client's own bookkeeping.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

/**
 * Per channel: the highest seq up to which every event was seen (delivered, or our own
 * acknowledged), plus the seqs seen above it. Resume asks for everything after it.
 */
export class Watermark {
  constructor(value) {
    this.value = value;
    this.above = new Set();
  }
  /** Record `seq`; false when it was seen already. */
  see(seq) {
    if (this.value !== undefined && seq <= this.value) return false;
    if (this.above.has(seq)) return false;
    this.above.add(seq);
    this.advance();
    return true;
  }
  raise(to) {
    if (this.value === undefined || to > this.value) this.value = to;
    this.advance();
  }
  advance() {
    if (this.value === undefined) return;
    while (this.above.has(this.value + 1)) this.above.delete(++this.value);
    for (const s of this.above) if (s <= this.value) this.above.delete(s);
  }
}

/**
 * What `emit` resolves to: the gateway stored the event (`status` "pending") or had it
 * already (`status` "duplicate"). `settled(status)` waits for a later status.
 */
export class Ack {
  constructor(client, channel, body) {
    this.id = body.id;
    this.channel = channel;
    this.seq = body.seq;
    this.status = body.status;
    this._client = client;
  }
  get duplicate() {
    return this.status === "duplicate";
  }
  /** Resolves once the event is `status` ("confirmed" or "finalized"). */
  settled(status = "finalized", options) {
    return this._client.waitForStatus(this.channel, this.seq, status, options);
  }
}

export class AnchorlineClient extends Emitter {
  /**
   * @param {string} url  the gateway, e.g. "http://127.0.0.1:8080"
   * @param {import("./identity.js").Identity} identity
   * @param {object} [options]
   * @param {{get(ch: string): any, set(ch: string, seq: number): any}} [options.storage]  last seq per channel
   * @param {Function} [options.io]  socket.io-client's `io` (default: imported from "socket.io-client")
   * @param {number} [options.refreshMarginMs]  refresh the token this long before it expires (30 s)
   * @param {number} [options.ackTimeoutMs]  how long to wait for an acknowledgement (10 s)
   * @param {number} [options.reconnectWaitMs]  how long an emit waits for a reconnect and resume (30 s)
   */
  constructor(url, identity, options = {}) {
    super();
    this.url = url.replace(/\/+$/, "");
    this.identity = identity;
    this.storage = options.storage || new MemoryStorage();
    this._io = options.io;
    this.refreshMarginMs = options.refreshMarginMs ?? 30_000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.reconnectWaitMs = options.reconnectWaitMs ?? 30_000;
    this.session = null;
    this.socket = null;
    this.reconnects = 0;
    this._joined = new Set();
    this._marks = new Map();
    this._tracked = new Map(); // "channel/seq" -> {status, tx_id, block_number, waiters}
    this._refreshTimer = null;
    this._closing = false;
    this._ready = null;
    this._setReady(false);
  }

  // -- REST ---------------------------------------------------------------------------

  async _request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.session) headers.Authorization = `Bearer ${this.session.token}`;
    let response;
    try {
      response = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw anchorlineError("AL1003", `gateway ${this.url} not reachable: ${e.message}`, { cause: e });
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw AnchorlineError.fromBody(data, response.status);
    return data;
  }

  /** GET a REST path with this session's token; rejects with the gateway's error. */
  get(path) {
    return this._request("GET", path);
  }

  _takeSession(data) {
    const lifetime = tokenLifetimeMs(data.token);
    this.session = {
      sessionId: data.session_id,
      token: data.token,
      expiresAt: data.expires_at,
      refreshToken: data.refresh_token,
      fingerprint: data.identity?.fingerprint,
      mspId: data.identity?.msp_id,
      role: data.identity?.role,
      // When to refresh, on this machine's clock.
      localExpiry: Date.now() + (lifetime ?? data.expires_at - Date.now()),
    };
    this._scheduleRefresh();
    this._fire("session", this.session);
    return this.session;
  }

  /**
   * Log in: POST /auth/challenge {certificate}, sign the returned `challenge` text exactly
   * as received, POST /auth/session {certificate, challenge, signature}.
   */
  async login() {
    const certificate = this.identity.certificatePem;
    const issued = await this._request("POST", "/auth/challenge", { certificate }, { auth: false });
    const signature = await this.identity.signBase64(issued.challenge);
    const data = await this._request("POST", "/auth/session", { certificate, challenge: issued.challenge, signature }, { auth: false });
    return this._takeSession(data);
  }

  /** New tokens from the refresh token (logs in again if that is refused); tells the socket. */
  async refresh() {
    if (!this.session) return this.login();
    let session;
    try {
      session = this._takeSession(await this._request("POST", "/auth/refresh", { refresh_token: this.session.refreshToken }, { auth: false }));
    } catch (e) {
      if (!(e instanceof AnchorlineError) || !["AL1507", "AL1508", "AL1509"].includes(e.code)) throw e;
      session = await this.login();
    }
    if (this.socket && this.socket.connected) {
      const body = await this._call("refresh", { token: session.token });
      this._fire("refreshed", body);
    }
    return session;
  }

  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    if (this._closing || !this.session) return;
    const wait = Math.max(1000, this.session.localExpiry - this.refreshMarginMs - Date.now());
    this._refreshTimer = setTimeout(() => {
      this.refresh().catch((e) => {
        this._fire("error", e);
        // A gateway briefly out of reach: try again soon rather than let the token lapse.
        if (!this._closing) {
          this._refreshTimer = setTimeout(() => this._scheduleRefresh(), 5000);
          this._refreshTimer.unref?.();
        }
      });
    }, wait);
    // In Node, a pending refresh must not keep the process alive on its own.
    this._refreshTimer.unref?.();
  }

  async _freshToken() {
    if (!this.session) await this.login();
    else if (this.session.localExpiry - this.refreshMarginMs < Date.now()) await this.refresh();
    return this.session.token;
  }

  /** Log out (POST /auth/logout) and close the connection. */
  async logout() {
    if (this.session) await this._request("POST", "/auth/logout").catch(() => {});
    await this.close();
  }

  // -- Socket.IO -------------------------------------------------------------------------

  _setReady(ready) {
    if (ready) {
      this._readyResolve?.();
      return;
    }
    if (this._ready && !this._readySettled) return;
    this._readySettled = false;
    this._ready = new Promise((resolve) => {
      this._readyResolve = () => {
        this._readySettled = true;
        resolve();
      };
    });
  }

  async _waitReady() {
    if (this._closing) throw new ConnectionError("AL1506", "the client was closed");
    if (this._readySettled) return;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ConnectionError("AL1506", `not connected: no reconnect and resume within ${this.reconnectWaitMs} ms`)), this.reconnectWaitMs);
    });
    try {
      await Promise.race([this._ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Open the live connection (logging in first if needed); rejects with the gateway's code. */
  async connect() {
    if (this.socket && this.socket.connected) return;
    if (!this.session) await this.login();
    const io = this._io || (await import("socket.io-client")).io;
    this._closing = false;
    const socket = io(this.url, {
      path: "/socket.io/",
      transports: ["websocket"],
      autoConnect: false,
      forceNew: true, // each client owns its connection (socket.io would share one per URL)
      reconnectionDelay: 200,
      reconnectionDelayMax: 2000,
      // Called on every (re)connect, so a reconnect always presents a valid token.
      auth: (cb) => {
        this._freshToken().then(
          (token) => cb({ token }),
          () => cb({ token: this.session ? this.session.token : "" }),
        );
      },
    });
    this.socket = socket;
    socket.onAny((name, data) => this._onServerEvent(name, data));
    socket.on("disconnect", (reason) => this._onDisconnect(reason));
    await new Promise((resolve, reject) => {
      const onConnect = () => {
        socket.off("connect_error", onError);
        resolve();
      };
      const onError = (err) => {
        socket.off("connect", onConnect);
        socket.disconnect();
        reject(anchorlineError(err.data?.code || "AL1003", err.message || "connection refused"));
      };
      socket.once("connect", onConnect);
      socket.once("connect_error", onError);
      socket.connect();
    });
    socket.on("connect", () => this._onReconnect());
    socket.on("connect_error", (err) => this._onConnectError(err));
    this._setReady(true);
    this._fire("connect", {});
  }

  get connected() {
    return Boolean(this.socket && this.socket.connected);
  }

  async _onReconnect() {
    this.reconnects += 1;
    try {
      const result = await this.resume();
      this._setReady(true);
      this._fire("resumed", result);
    } catch (e) {
      this._fire("error", e);
    }
  }

  _onDisconnect(reason) {
    this._setReady(false);
    this._fire("disconnect", { reason });
    if (this._closing) return;
    if (reason === "io server disconnect") {
      // The gateway closed this session's connection (expired or revoked): socket.io
      // does not reconnect by itself then. Log in again and reconnect.
      this.login().then(
        () => this.socket && !this._closing && this.socket.connect(),
        (e) => this._fire("error", e),
      );
    }
  }

  _onConnectError(err) {
    if (this._closing || !this.socket || this.socket.active) return; // socket.io retries by itself
    // Refused by the gateway (a token problem): get a new session, then try again.
    const code = err.data?.code;
    this._fire("error", anchorlineError(code || "AL1003", err.message || "connection refused"));
    const again = code === "AL1508" ? this.refresh() : this.login();
    again.then(
      () => setTimeout(() => !this._closing && this.socket.connect(), 200),
      (e) => this._fire("error", e),
    );
  }

  async _call(name, data) {
    if (!this.socket) throw new ConnectionError("AL1506", "not connected: call connect() first");
    let body;
    try {
      body = await this.socket.timeout(this.ackTimeoutMs).emitWithAck(name, data);
    } catch (e) {
      throw anchorlineError("AL1003", `no answer to '${name}' within ${this.ackTimeoutMs} ms`, { cause: e });
    }
    if (body && typeof body === "object" && body.error) throw AnchorlineError.fromBody(body.error);
    return body;
  }

  _mark(channel) {
    let m = this._marks.get(channel);
    if (!m) {
      m = new Watermark(undefined);
      this._marks.set(channel, m);
    }
    return m;
  }

  /** The highest seq of `channel` up to which every event was seen (what resume sends). */
  lastSeq(channel) {
    return this._marks.get(channel)?.value;
  }

  async _persist(channel) {
    const v = this.lastSeq(channel);
    if (v !== undefined) await this.storage.set(channel, v);
  }

  /**
   * Join `channel`. With `after`, first receive every stored event with a higher seq
   * (catch-up), then live ones. Without it, catch up from the seq kept in storage if
   * there is one, else start from now. Resolves to `{channel, joined, last_seq, can_emit}`.
   */
  async join(channel, { after } = {}) {
    const start = after ?? (await this.storage.get(channel));
    const mark = this._mark(channel);
    if (start !== undefined) {
      mark.value = start;
      mark.advance();
    }
    const result = await this._call("join", start === undefined ? { channel } : { channel, after: start });
    this._joined.add(channel);
    mark.raise(result.last_seq);
    await this._persist(channel);
    return result;
  }

  /** Stop receiving `channel`'s events (its last seq stays in storage). */
  async leave(channel) {
    const result = await this._call("leave", { channel });
    this._joined.delete(channel);
    return result;
  }

  /**
   * Re-join every joined channel after its last seen seq (done by itself after a
   * reconnect). Resolves to the gateway's `{channels: {name: {joined, last_seq} | {error}}}`.
   */
  async resume() {
    const channels = {};
    for (const ch of this._joined) channels[ch] = this.lastSeq(ch) ?? 0;
    const result = await this._call("resume", { channels });
    for (const [name, outcome] of Object.entries(result.channels || {})) {
      if (outcome && typeof outcome.last_seq === "number") {
        this._mark(name).raise(outcome.last_seq);
        await this._persist(name);
      } else if (outcome && outcome.error) {
        this._joined.delete(name);
        this._fire("kicked", { channel: name, ...outcome.error });
      }
    }
    // Status pushes sent while we were away are lost: ask for the watched ones.
    for (const [key, t] of this._tracked) {
      if (t.waiters.length) this._pollStatus(...splitKey(key)).catch(() => {});
    }
    return result;
  }

  _onServerEvent(name, data) {
    if (name === "event" && data && typeof data.seq === "number") {
      if (!this._mark(data.channel).see(data.seq)) return; // a catch-up overlapping a live event
      this._persist(data.channel).catch((e) => this._fire("error", e));
      if (data.status) this._noteStatus(data.channel, data.seq, { status: data.status });
      this._fire("event", data);
    } else if (name === "status" && data) {
      for (const seq of data.seqs || []) this._noteStatus(data.channel, seq, data);
      this._fire("status", data);
    } else if (name === "kicked" && data) {
      this._joined.delete(data.channel);
      this._fire("kicked", data);
    } else if (name === "error" && data) {
      this._fire("error", AnchorlineError.fromBody(data));
    } else {
      this._fire(name, data);
    }
  }

  // -- events ----------------------------------------------------------------------------

  /**
   * Sign and send an event. Resolves to an Ack once the gateway stored it (acknowledged
   * means durable); rejects with an AnchorlineError carrying the gateway's code. When the
   * connection drops before the ack, the same signed event (same id) is sent again after
   * the resume, so it is stored once (a repeat is acknowledged as "duplicate").
   */
  async emit(channel, type, payload, { id } = {}) {
    const event = await signEvent(this.identity, { channel, type, payload, id });
    return this.emitSigned(event);
  }

  /** Send an already signed event (see signEvent). */
  async emitSigned(event) {
    if (!this.socket) throw new ConnectionError("AL1506", "not connected: call connect() first");
    for (let attempt = 0; ; attempt++) {
      await this._waitReady();
      let body;
      try {
        body = await this.socket.timeout(this.ackTimeoutMs).emitWithAck("event", event);
      } catch (e) {
        if (!this.socket.connected && attempt < 3 && !this._closing) continue; // resent after resume
        throw anchorlineError("AL1003", `no acknowledgement for event ${event.id} within ${this.ackTimeoutMs} ms`, { cause: e });
      }
      if (!body || typeof body !== "object") throw anchorlineError("AL1003", `unexpected acknowledgement ${JSON.stringify(body)}`);
      if (body.error) throw AnchorlineError.fromBody({ ...body.error, id: body.id, seq: body.seq });
      if (typeof body.seq === "number") {
        this._mark(event.channel).see(body.seq);
        this._persist(event.channel).catch((e) => this._fire("error", e));
        this._track(event.channel, body.seq);
      }
      return new Ack(this, event.channel, body);
    }
  }

  // -- statuses --------------------------------------------------------------------------

  _track(channel, seq) {
    const key = `${channel}/${seq}`;
    let t = this._tracked.get(key);
    if (!t) {
      t = { status: "pending", tx_id: null, block_number: null, waiters: [] };
      this._tracked.set(key, t);
      if (this._tracked.size > 10_000) {
        // Keep memory bounded: forget the oldest event nobody waits for.
        for (const [k, v] of this._tracked) {
          if (!v.waiters.length) {
            this._tracked.delete(k);
            break;
          }
        }
      }
    }
    return t;
  }

  _noteStatus(channel, seq, data) {
    const t = this._tracked.get(`${channel}/${seq}`);
    if (!t || (RANK[data.status] ?? -1) <= (RANK[t.status] ?? -1)) return;
    t.status = data.status;
    if (data.tx_id !== undefined) t.tx_id = data.tx_id;
    if (data.block_number !== undefined) t.block_number = data.block_number;
    const still = [];
    for (const w of t.waiters) {
      if (RANK[t.status] >= RANK[w.status]) w.resolve({ channel, seq, status: t.status, tx_id: t.tx_id, block_number: t.block_number });
      else still.push(w);
    }
    t.waiters = still;
  }

  async _pollStatus(channel, seq) {
    const body = await this.get(`/events/${encodeURIComponent(channel)}/${seq}`);
    this._noteStatus(channel, seq, body);
  }

  /**
   * Resolves `{channel, seq, status, tx_id, block_number}` once event `seq` of `channel`
   * reached `status` ("confirmed" or "finalized"); the channel must be joined for the
   * pushes. Rejects with AL1003 after `timeoutMs` (default 60 s).
   */
  waitForStatus(channel, seq, status = "finalized", { timeoutMs = 60_000 } = {}) {
    if (!(status in RANK)) throw anchorlineError("AL1002", `status must be one of ${STATUSES.join(", ")}`);
    const t = this._track(channel, seq);
    if (RANK[t.status] >= RANK[status]) {
      return Promise.resolve({ channel, seq, status: t.status, tx_id: t.tx_id, block_number: t.block_number });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        t.waiters = t.waiters.filter((w) => w !== waiter);
        reject(anchorlineError("AL1003", `event ${channel}/${seq} not ${status} within ${timeoutMs} ms (last seen: ${t.status})`));
      }, timeoutMs);
      const waiter = {
        status,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      t.waiters.push(waiter);
      // The push may have gone out before we were watching: ask once.
      this._pollStatus(channel, seq).catch(() => {});
    });
  }

  /** GET /events/{channel}/{seq}/proof: the event's proof document (AL1702 until batched). */
  proof(channel, seq) {
    return this.get(`/events/${encodeURIComponent(channel)}/${seq}/proof`);
  }

  /** Stop reconnecting, close the connection, cancel the token refresh; status waits reject. */
  async close() {
    this._closing = true;
    clearTimeout(this._refreshTimer);
    for (const t of this._tracked.values()) {
      for (const w of t.waiters) w.reject(new ConnectionError("AL1506", "the client was closed"));
      t.waiters = [];
    }
    if (this.socket) {
      this.socket.disconnect();
    }
  }
}

function splitKey(key) {
  const i = key.lastIndexOf("/");
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
