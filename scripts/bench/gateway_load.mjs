// Load generator for scripts/bench/gateway_events.py (Node + socket.io-client).
// Reads a JSON config on argv[2], prints one JSON result line on stdout.
// Emitters send pre-signed events at a fixed total rate, or as fast as their
// outstanding window allows when rate is 0; receivers record the delay from
// emit to receipt. Bounded: stops after `duration_s` plus a drain of 3 s.
// `role` splits the work over two processes so that the emitters' acks are not
// delayed behind hundreds of receivers in one event loop: "receivers" connects
// and joins, prints {"ready":true}, records [id, time] samples until its stdin
// closes; "emitters" sends and reports its send times; "all" (default) does both.
// Times are absolute (performance.timeOrigin + now()) so two processes compare.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { createPrivateKey, sign, randomBytes } from "node:crypto";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const require = createRequire(cfg.node_modules + "/");
const { io } = require("socket.io-client");

function canonical(v) {
  // RFC 8785 for the values used here (strings, safe integers, objects, arrays).
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
}

const now = () => performance.timeOrigin + performance.now();
const role = cfg.role || "all";
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// A pipe takes large writes asynchronously: exit only once the line is out.
const writeLine = (obj) =>
  new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + "\n", resolve));

function connect(token) {
  return new Promise((resolve, reject) => {
    const s = io(cfg.url, {
      transports: ["websocket"],
      auth: { token },
      reconnection: false,
      perMessageDeflate: false,
      timeout: 20000,
    });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => reject(e));
  });
}

function join(s) {
  return new Promise((resolve, reject) => {
    s.timeout(20000).emit("join", { channel: cfg.channel }, (err, res) =>
      err || res.error ? reject(err || new Error(JSON.stringify(res.error))) : resolve(res));
  });
}

async function main() {
  const sentAt = new Map();
  const deliveryLat = [];
  let delivered = 0;
  const receivers = [];
  const nReceivers = role === "emitters" ? 0 : cfg.receivers;
  // Connect in small groups so the gateway's accept queue is not flooded.
  for (let i = 0; i < nReceivers; i += 50) {
    const group = [];
    for (let j = i; j < Math.min(cfg.receivers, i + 50); j++) group.push(connect(cfg.receiver_token));
    receivers.push(...(await Promise.all(group)));
  }
  const emitters = [];
  const emitterCfgs = role === "receivers" ? [] : cfg.emitters;
  for (const e of emitterCfgs) emitters.push({ sock: await connect(e.token), key: createPrivateKey(e.key_pem) });
  await Promise.all([...receivers, ...emitters.map((e) => e.sock)].map(join));
  let measuring = role === "receivers";
  const samples = [];
  for (const r of receivers) {
    r.on("event", (ev) => {
      if (!measuring) return;
      delivered++;
      if ((delivered & 7) !== 0) return;
      if (role === "receivers") { samples.push([ev.id, now()]); return; }
      const t = sentAt.get(ev.id);
      if (t !== undefined) deliveryLat.push(now() - t);
    });
  }
  if (role === "receivers") {
    console.log(JSON.stringify({ ready: true }));
    await new Promise((resolve) => { process.stdin.on("end", resolve); process.stdin.resume(); });
    await new Promise((r) => setTimeout(r, 500));
    for (const s of receivers) s.close();
    await writeLine({ receivers: receivers.length, delivered, samples });
    process.exit(0);
  }
  // Pre-sign every event so signing does not compete with the measurement.
  const perEmitter = Math.ceil(((cfg.rate || cfg.max_events) * cfg.duration_s) / emitters.length);
  const pad = "x".repeat(cfg.pad);
  const prefix = randomBytes(6).toString("hex");
  for (const [k, e] of emitters.entries()) {
    e.events = [];
    for (let i = 0; i < perEmitter; i++) {
      const body = { id: `${prefix}-${k}-${i}`, channel: cfg.channel, type: "bid",
        payload: { amount: i, note: pad }, client_ts: Date.now() };
      const sig = sign("sha256", Buffer.from(canonical(body)), e.key).toString("base64");
      e.events.push({ ...body, signature: sig });
    }
  }
  const ackLat = [];
  let acked = 0, errors = 0, lastError = null, outstanding = 0;
  const send = (e) => {
    const ev = e.events[e.next++];
    const t = now();
    sentAt.set(ev.id, t);
    outstanding++;
    e.sock.emit("event", ev, (res) => {
      outstanding--;
      if (res && res.status === "pending") { acked++; ackLat.push(now() - t); }
      else { errors++; lastError = res; }
      if (!cfg.rate && e.next < e.events.length && running) send(e);
    });
  };
  let running = true;
  measuring = true;
  const t0 = now();
  for (const e of emitters) e.next = 0;
  if (cfg.rate) {
    // Fixed rate: every tick, send what the schedule says is due.
    const perEmitterRate = cfg.rate / emitters.length;
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const elapsed = (now() - t0) / 1000;
        if (elapsed >= cfg.duration_s) { clearInterval(timer); resolve(); return; }
        for (const e of emitters) {
          const due = Math.min(e.events.length, Math.floor(elapsed * perEmitterRate));
          while (e.next < due) send(e);
        }
      }, 2);
    });
  } else {
    for (const e of emitters) for (let i = 0; i < cfg.window; i++) send(e);
    await new Promise((r) => setTimeout(r, cfg.duration_s * 1000));
  }
  running = false;
  const sendSeconds = (now() - t0) / 1000;
  const ackedAtEnd = acked, deliveredAtEnd = delivered;
  const drainStart = now();
  while (outstanding > 0 && now() - drainStart < 3000) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 200));
  const result = {
    clients: receivers.length + emitters.length,
    emitters: emitters.length,
    receivers: receivers.length,
    offered_rate: cfg.rate,
    seconds: sendSeconds,
    accepted_per_s: ackedAtEnd / sendSeconds,
    deliveries_per_s: deliveredAtEnd / sendSeconds,
    acked, delivered, errors, last_error: lastError,
    ack_ms: { p50: pct(ackLat, 50), p99: pct(ackLat, 99), max: pct(ackLat, 100) },
    delivery_ms: { p50: pct(deliveryLat, 50), p99: pct(deliveryLat, 99), max: pct(deliveryLat, 100) },
  };
  if (role === "emitters") result.sent_at = Object.fromEntries(sentAt);
  for (const s of [...receivers, ...emitters.map((e) => e.sock)]) s.close();
  await writeLine(result);
  process.exit(0);
}

const guard = setTimeout(() => { console.log(JSON.stringify({ error: "timeout" })); process.exit(2); },
  (cfg.duration_s + 120) * 1000);
guard.unref();
main().catch((e) => { console.log(JSON.stringify({ error: String(e && e.message || e) })); process.exit(1); });
