// The JS side of tests/integration/js/test_js_python_channel.py: a member that says
// hello, receives the Python member's events, loses its connection while the Python
// member emits, resumes (catch-up from its file storage's last seq), emits again, and
// verifies the proof of a Python event. Prints one JSON line with what it saw.
import { AnchorlineClient, verifyProof } from "../src/index.js";
import { FileStorage, loadIdentity, trustFromMspDirs } from "../src/file-storage.js";

const url = process.env.ANCHORLINE_URL;
const { js } = JSON.parse(process.env.ANCHORLINE_MEMBERS);
const channel = process.env.CHANNEL;
const storage = new FileStorage(process.env.SEQ_FILE);
const client = new AnchorlineClient(url, await loadIdentity(js.dir, js.msp_id), {
  storage,
  refreshMarginMs: Number(process.env.REFRESH_MARGIN_MS || 30000),
});
const seen = [];
const counts = { refreshed: 0, session_expired: 0, resumed: 0, errors: [] };
const waiters = [];
client.on("event", (e) => {
  seen.push(e);
  for (const w of [...waiters]) if (w.test()) w.resolve();
});
client.on("refreshed", () => counts.refreshed++);
client.on("session_expired", () => counts.session_expired++);
client.on("resumed", () => counts.resumed++);
client.on("error", (e) => counts.errors.push(e.code));
function until(test, what, ms = 30000) {
  if (test()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    waiters.push({ test, resolve: () => (clearTimeout(t), resolve()) });
  });
}
const pyEvents = (kind) => seen.filter((e) => e.type === kind && e.msp_id !== js.msp_id);

await client.login();
await client.connect();
await client.join(channel);
const hello = await client.emit(channel, "js.hello", { text: "hello from JS ☕" });
await until(() => pyEvents("py.bid").length >= 3, "three py.bid events");

// Drop the connection and stay away while the Python member emits two more events.
client.socket.io.reconnection(false);
client.socket.io.engine.close();
await client.waitForStatus(channel, hello.seq, "pending"); // (a REST call still works)
for (let i = 0; i < 300; i++) {
  const page = await client.get(`/events/${channel}?after=${client.lastSeq(channel)}`);
  if (page.events.filter((e) => e.type === "py.while-away").length >= 2) break;
  await new Promise((r) => setTimeout(r, 100));
}
const lastBeforeResume = client.lastSeq(channel);
client.socket.io.reconnection(true);
client.socket.connect();
await until(() => pyEvents("py.while-away").length >= 2, "the events sent while away (catch-up)");
await new Promise((r) => setTimeout(r, Number(process.env.STAY_MS || 0)));
const after = await client.emit(channel, "js.after-resume", { n: 1 });
const final = await after.settled("finalized", { timeoutMs: 60000 });
const pyBid = pyEvents("py.bid")[0];
await client.waitForStatus(channel, pyBid.seq, "finalized", { timeoutMs: 60000 });
const proof = await client.proof(channel, pyBid.seq);
const verdict = await verifyProof(proof, trustFromMspDirs(JSON.parse(process.env.ANCHORLINE_TRUST)));
await client.emit(channel, "js.done", {});
await client.leave(channel);
const leftRefusal = await client.emit(channel, "js.after-leave", {}).then(
  () => null,
  (e) => e.code,
);
await client.close();
console.log(
  JSON.stringify({
    hello_seq: hello.seq,
    after_seq: after.seq,
    final_status: final.status,
    received: seen.map((e) => [e.seq, e.type]),
    last_before_resume: lastBeforeResume,
    last_seq: client.lastSeq(channel),
    stored_seq: storage.get(channel),
    reconnects: client.reconnects,
    left_refusal: leftRefusal,
    verdict: { ok: verdict.ok, checks: Object.fromEntries(verdict.checks.map((c) => [c.name, c.ok])) },
    ...counts,
  }),
);
