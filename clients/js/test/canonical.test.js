import { test } from "node:test";
import assert from "node:assert/strict";
import { canonicalize, AnchorlineError } from "../src/index.js";

// RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
const NUMBERS = [
  [0x0000000000000000n, "0"],
  [0x8000000000000000n, "0"],
  [0x0000000000000001n, "5e-324"],
  [0x8000000000000001n, "-5e-324"],
  [0x7fefffffffffffffn, "1.7976931348623157e+308"],
  [0xffefffffffffffffn, "-1.7976931348623157e+308"],
  [0x4340000000000000n, "9007199254740992"],
  [0xc340000000000000n, "-9007199254740992"],
  [0x4430000000000000n, "295147905179352830000"],
  [0x44b52d02c7e14af5n, "9.999999999999997e+22"],
  [0x44b52d02c7e14af6n, "1e+23"],
  [0x44b52d02c7e14af7n, "1.0000000000000001e+23"],
  [0x444b1ae4d6e2ef4en, "999999999999999700000"],
  [0x444b1ae4d6e2ef4fn, "999999999999999900000"],
  [0x444b1ae4d6e2ef50n, "1e+21"],
  [0x3eb0c6f7a0b5ed8cn, "9.999999999999997e-7"],
  [0x3eb0c6f7a0b5ed8dn, "0.000001"],
  [0x41b3de4355555553n, "333333333.3333332"],
  [0x41b3de4355555554n, "333333333.33333325"],
  [0x41b3de4355555555n, "333333333.3333333"],
  [0x41b3de4355555556n, "333333333.3333334"],
  [0x41b3de4355555557n, "333333333.33333343"],
  [0xbecbf647612f3696n, "-0.0000033333333333333333"],
  [0x43143ff3c1cb0959n, "1424953923781206.2"],
];

function fromBits(bits) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, bits);
  return view.getFloat64(0);
}

test("numbers follow ECMAScript serialisation (RFC 8785 Appendix B)", () => {
  for (const [bits, text] of NUMBERS) assert.equal(canonicalize(fromBits(bits)), text, bits.toString(16));
});

test("RFC 8785 §3.2.2 example: strings, literals and numbers", () => {
  const value = {
    numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
    string: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"/",
    literals: [null, true, false],
  };
  assert.equal(
    canonicalize(value),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test("RFC 8785 §3.2.3 example: members sorted by UTF-16 code units", () => {
  const value = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
  };
  // (Object.keys would list "1" first: integer-like keys come first in JS objects.)
  const text = canonicalize(value);
  const order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"].map((k) => text.indexOf(JSON.stringify(k) + ":"));
  assert.ok(order.every((pos, i) => pos > 0 && (i === 0 || pos > order[i - 1])), text);
});

test("the leaf known answer of docs/proof-format.md", () => {
  const record = { id: "ev-1", channel: "market", type: "bid", payload: { amount: 12, item: "lot-7" }, client_ts: 1764000000000 };
  assert.equal(
    canonicalize(record),
    '{"channel":"market","client_ts":1764000000000,"id":"ev-1","payload":{"amount":12,"item":"lot-7"},"type":"bid"}',
  );
});

test("what I-JSON cannot carry is refused with AL1601", () => {
  for (const bad of [NaN, Infinity, -Infinity, "\ud800", { "\udc00": 1 }, 1n, () => 1, new Date(0)]) {
    assert.throws(() => canonicalize(bad), (e) => e instanceof AnchorlineError && e.code === "AL1601");
  }
});

test("undefined members are left out, as JSON.stringify does", () => {
  assert.equal(canonicalize({ a: undefined, b: 1 }), '{"b":1}');
});
