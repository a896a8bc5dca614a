import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStorage, LocalStorage } from "../src/index.js";
import { Watermark } from "../src/client.js";

const inNode = typeof process !== "undefined" && Boolean(process.versions?.node);

test("memory and local storage keep the last seq per channel", () => {
  const mem = new MemoryStorage({ a: 3 });
  assert.equal(mem.get("a"), 3);
  mem.set("b", 7);
  assert.equal(mem.get("b"), 7);
  const backing = new Map();
  const fake = { getItem: (k) => (backing.has(k) ? backing.get(k) : null), setItem: (k, v) => backing.set(k, v) };
  const local = new LocalStorage("p:", globalThis.localStorage ?? fake);
  local.set("market", 42);
  assert.equal(local.get("market"), 42);
  assert.equal(local.get("never"), undefined);
});

test("file storage survives a restart (Node)", async () => {
  if (!inNode) return; // node:fs: not in a browser
  const { mkdtempSync, readFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { FileStorage } = await import("../src/file-storage.js");
  const path = join(mkdtempSync(join(tmpdir(), "al-")), "sub", "seqs.json");
  const first = new FileStorage(path);
  assert.equal(first.get("market"), undefined);
  first.set("market", 5);
  first.set("other", 1);
  assert.deepEqual(JSON.parse(readFileSync(path, "utf8")), { market: 5, other: 1 });
  assert.equal(new FileStorage(path).get("market"), 5);
});

test("watermark: the highest seq up to which every event was seen", () => {
  const m = new Watermark(10);
  assert.equal(m.see(10), false); // already seen
  // Our own ack for 12 can arrive before another member's event 11 of the same commit.
  assert.equal(m.see(12), true);
  assert.equal(m.value, 10); // 11 still missing: a resume must ask from 10
  assert.equal(m.see(11), true);
  assert.equal(m.value, 12);
  assert.equal(m.see(12), false);
  m.raise(20); // a join answer: everything up to 20 was sent
  assert.equal(m.value, 20);
  assert.equal(m.see(15), false);
  const fresh = new Watermark(undefined);
  assert.equal(fresh.see(4), true); // before the join answer: delivered, remembered
  fresh.raise(3);
  assert.equal(fresh.value, 4);
});

test("errors carry the gateway's code and are typed by its family", async () => {
  const m = await import("../src/index.js");
  const cases = [
    ["AL1206", m.IdentityError],
    ["AL1505", m.AuthError],
    ["AL1604", m.EventError],
    ["AL1702", m.ProofError],
    ["AL1840", m.ProofError],
    ["AL1003", m.ConnectionError],
    ["AL1901", m.AnchorlineError],
  ];
  for (const [code, Class] of cases) {
    const e = m.AnchorlineError.fromBody({ code, message: "m", retry_after_s: 3 }, 400);
    assert.ok(e instanceof Class && e instanceof m.AnchorlineError, code);
    assert.equal(e.code, code);
    assert.equal(e.reason, "m");
    assert.equal(e.status, 400);
    assert.equal(e.details.retry_after_s, 3);
  }
  assert.throws(() => m.canonicalize(NaN), m.EventError);
});
