// Load generator of scripts/bench (Node + socket.io-client), one process per role.
//   node load.mjs <config.json>
// Config: {url, node_modules, role: "receivers" | "emitters", channel, pad,
//          receivers, receiver_token | emitters: [{token, key_pem}]}.
// WebSocket only, no compression, no reconnection. The process connects, joins
// `channel`, prints {"ready": true, ...} and then obeys one JSON command per
// stdin line, answering each with one JSON line on stdout:
//   receivers  {"cmd": "start", "trial": P}  count deliveries of events whose id
//                                             starts with P; answers {"started": true}
//              {"cmd": "count"}              answers {delivered} so far, measuring on
//              {"cmd": "stop"}               answers {delivered, samples: [[id, t], ...],
//                                             disconnected}; every 8th delivery is sampled
//   emitters   {"cmd": "run", "trial": P, "rate": R, "duration_s": D, "max_events": M}
//                                             pre-signs min(R·D, M) events with ids P-k-i, sends
//                                             them open-loop at R events/s (on schedule, not
//                                             waiting for acks), waits ≤ 3 s for the acks;
//                                             answers {sent, acked, errors, seconds, cpu_s
//                                             (this process's CPU while sending and waiting), ...,
//                                             ack_samples_ms, sent_at}
//   both       {"cmd": "exit"}
// Times are absolute (performance.timeOrigin + now()) so the two processes
// compare. Latencies go back raw: percentiles are computed in Python
// (scripts/bench/stats.py), one definition for every benchmark.
// Bounded: every connect and join times out after 20 s; a process with no
// command for 300 s exits.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
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
const round = (x) => Math.round(x * 100) / 100;
// A pipe takes large writes asynchronously: go on only once the line is out.
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
      err || (res && res.error) ? reject(err || new Error(JSON.stringify(res.error))) : resolve(res));
  });
}

async function connectAll(tokens) {
  // In groups of 50, so the server's accept queue is not flooded.
  const out = [];
  for (let i = 0; i < tokens.length; i += 50) {
    out.push(...(await Promise.all(tokens.slice(i, i + 50).map(connect))));
  }
  await Promise.all(out.map(join));
  return out;
}

async function receivers() {
  const socks = await connectAll(Array(cfg.receivers).fill(cfg.receiver_token));
  let prefix = null, delivered = 0, disconnected = 0, samples = [];
  for (const r of socks) {
    r.on("disconnect", () => { disconnected++; });
    r.on("event", (ev) => {
      if (prefix === null || typeof ev.id !== "string" || !ev.id.startsWith(prefix)) return;
      delivered++;
      if ((delivered & 7) === 0) samples.push([ev.id, round(now())]);
    });
  }
  return {
    socks,
    ready: { ready: true, receivers: socks.length },
    start(cmd) { prefix = cmd.trial + "-"; delivered = 0; samples = []; return { started: true }; },
    count() { return { delivered }; },
    stop() {
      const out = { delivered, samples, disconnected };
      prefix = null; samples = [];
      return out;
    },
  };
}

async function emitters() {
  const list = [];
  for (const e of cfg.emitters) list.push({ key: createPrivateKey(e.key_pem), token: e.token });
  const socks = await connectAll(list.map((e) => e.token));
  socks.forEach((s, k) => { list[k].sock = s; });
  const pad = "x".repeat(cfg.pad || 0);
  async function run(cmd) {
    // Pre-sign every event so signing does not compete with the sending.
    const total = Math.max(1, Math.min(cmd.max_events, Math.round(cmd.rate * cmd.duration_s)));
    const events = [];
    for (let i = 0; i < total; i++) {
      const e = list[i % list.length];
      const body = { id: `${cmd.trial}-${i % list.length}-${i}`, channel: cfg.channel, type: "bid",
        payload: { amount: i, note: pad }, client_ts: Date.now() };
      const signature = sign("sha256", Buffer.from(canonical(body)), e.key).toString("base64");
      events.push([e, { ...body, signature }]);
    }
    const sentAt = {};
    const ackLat = [];
    let sent = 0, acked = 0, errors = 0, lastError = null, outstanding = 0, lateSends = 0;
    const send = ([e, ev]) => {
      const t = now();
      sentAt[ev.id] = round(t);
      outstanding++;
      sent++;
      e.sock.emit("event", ev, (res) => {
        outstanding--;
        if (res && (res.status === "pending" || res.status === "duplicate")) { acked++; ackLat.push(round(now() - t)); }
        else { errors++; lastError = res; }
      });
    };
    const seconds = total / cmd.rate;
    const cpu0 = process.cpuUsage();
    const t0 = now();
    await new Promise((resolve) => {
      const tick = () => {
        const elapsed = (now() - t0) / 1000;
        const due = Math.min(total, Math.floor(elapsed * cmd.rate) + 1);
        // More than 5 ms behind schedule: the generator, not the server, is late.
        if (due - sent > Math.max(1, cmd.rate * 0.005)) lateSends++;
        while (sent < due) send(events[sent]);
        if (sent >= total) { resolve(); return; }
        setTimeout(tick, 1);
      };
      tick();
    });
    const sendSeconds = Math.max((now() - t0) / 1000, seconds);
    const drainStart = now();
    while (outstanding > 0 && now() - drainStart < 3000) await new Promise((r) => setTimeout(r, 5));
    const cpu = process.cpuUsage(cpu0);
    return {
      cpu_s: (cpu.user + cpu.system) / 1e6, busy_s: (now() - t0) / 1000,
      sent, acked, errors, last_error: lastError, late_ticks: lateSends,
      offered_rate: cmd.rate, seconds: sendSeconds, sent_per_s: sent / sendSeconds,
      accepted_per_s: acked / sendSeconds, outstanding,
      ack_samples_ms: ackLat, sent_at: sentAt,
    };
  }
  return { socks, ready: { ready: true, emitters: socks.length }, run };
}

async function main() {
  const role = cfg.role === "receivers" ? await receivers() : await emitters();
  await writeLine(role.ready);
  let idle = setTimeout(() => process.exit(3), 300000);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    clearTimeout(idle);
    const cmd = JSON.parse(line);
    if (cmd.cmd === "exit") break;
    if (cmd.cmd === "start") await writeLine(role.start(cmd));
    else if (cmd.cmd === "stop") await writeLine(role.stop(cmd));
    else if (cmd.cmd === "count" && role.count) await writeLine(role.count(cmd));
    else if (cmd.cmd === "run") await writeLine(await role.run(cmd));
    else await writeLine({ error: `unknown command ${cmd.cmd}` });
    idle = setTimeout(() => process.exit(3), 300000);
  }
  for (const s of role.socks) s.close();
  process.exit(0);
}

main().catch(async (e) => { await writeLine({ error: String((e && e.message) || e) }); process.exit(1); });
