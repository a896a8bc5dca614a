// The part of node:assert/strict the package's tests use, for the browser runner.
class AssertionError extends Error {}

function fail(message) {
  throw new AssertionError(message);
}

function deepEqualValues(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqualValues(a[k], b[k]));
}

function check(error, expected) {
  if (typeof expected === "function" && !(expected.prototype instanceof Error) && expected !== Error) {
    if (!expected(error)) fail(`unexpected error: ${error}`);
  } else if (expected && !(error instanceof expected)) {
    fail(`unexpected error type: ${error}`);
  }
}

const assert = {
  ok(value, message) {
    if (!value) fail(message || `expected a truthy value, got ${value}`);
  },
  equal(a, b, message) {
    if (!Object.is(a, b)) fail(message || `expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  },
  notEqual(a, b, message) {
    if (Object.is(a, b)) fail(message || `expected something other than ${JSON.stringify(b)}`);
  },
  deepEqual(a, b, message) {
    if (!deepEqualValues(a, b)) fail(message || `expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  },
  match(text, re) {
    if (!re.test(text)) fail(`${text} does not match ${re}`);
  },
  throws(fn, expected) {
    try {
      fn();
    } catch (e) {
      check(e, expected);
      return;
    }
    fail("expected an exception");
  },
  async rejects(promise, expected) {
    try {
      await (typeof promise === "function" ? promise() : promise);
    } catch (e) {
      check(e, expected);
      return;
    }
    fail("expected a rejection");
  },
};
assert.strictEqual = assert.equal;
assert.deepStrictEqual = assert.deepEqual;

export default assert;
