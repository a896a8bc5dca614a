// RFC 8785 (JSON Canonicalization Scheme): the exact bytes a member signs.
//
// RFC 8785 defines numbers by ECMAScript's Number serialisation (ES2019 §7.1.12.1) and
// strings by JSON.stringify's escaping, so both come from the engine itself here:
// String(n) for finite numbers (with -0 as "0"), JSON.stringify(s) for strings. What is
// left to do by hand is refusing what I-JSON cannot carry and sorting object members by
// their keys' UTF-16 code units (JavaScript's default string order).

import { anchorlineError } from "./errors.js";
import { utf8 } from "./bytes.js";

function refuse(message) {
  return anchorlineError("AL1601", `value cannot be canonicalised (RFC 8785): ${message}`);
}

// A lone surrogate: JSON.stringify escapes it (well-formed stringify), but RFC 8785
// requires valid Unicode, as the gateway's reference implementation does.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function string(s) {
  if (LONE_SURROGATE.test(s)) throw refuse("string holds a lone UTF-16 surrogate");
  return JSON.stringify(s);
}

function number(n) {
  if (!Number.isFinite(n)) throw refuse(`${n} is not a finite number`);
  return Object.is(n, -0) ? "0" : String(n);
}

function write(value, out, depth) {
  if (depth > 256) throw refuse("nesting deeper than 256 levels");
  if (value === null) {
    out.push("null");
    return;
  }
  switch (typeof value) {
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "number":
      out.push(number(value));
      return;
    case "string":
      out.push(string(value));
      return;
    case "object":
      break;
    default:
      throw refuse(`${typeof value} is not a JSON value`);
  }
  if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i) out.push(",");
      write(value[i], out, depth + 1);
    }
    out.push("]");
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw refuse(`${proto && proto.constructor ? proto.constructor.name : "object"} is not a plain JSON object`);
  }
  // Default sort compares UTF-16 code units: exactly RFC 8785 §3.2.3.
  const keys = Object.keys(value).sort();
  out.push("{");
  let first = true;
  for (const key of keys) {
    const item = value[key];
    if (item === undefined) continue; // as JSON.stringify: an undefined member is absent
    if (!first) out.push(",");
    first = false;
    out.push(string(key), ":");
    write(item, out, depth + 1);
  }
  out.push("}");
}

/** The RFC 8785 text of `value`; throws an AnchorlineError (AL1601) for non-JSON values. */
export function canonicalize(value) {
  const out = [];
  write(value, out, 0);
  return out.join("");
}

/** The RFC 8785 UTF-8 bytes of `value` (what is hashed and signed). */
export function canonicalBytes(value) {
  return utf8(canonicalize(value));
}
