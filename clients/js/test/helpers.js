// Shared by the tests in Node and in Chromium: read a data file of test/ the way the
// runtime can (node:fs in Node, fetch in the browser page that serves test/).

const inNode = typeof process !== "undefined" && process.versions && process.versions.node;

export async function readJson(name) {
  if (inNode) {
    const { readFile } = await import("node:fs/promises");
    return JSON.parse(await readFile(new URL(name, import.meta.url), "utf8"));
  }
  const response = await fetch(new URL(name, import.meta.url));
  if (!response.ok) throw new Error(`cannot fetch ${name}: ${response.status}`);
  return response.json();
}

/** A TrustStore from the corpus's `{mspId: {cacerts: [pem], crls: [pem]}}`. */
export function trustFrom(TrustStore, spec) {
  const trust = new TrustStore();
  for (const [mspId, m] of Object.entries(spec)) {
    m.cacerts.forEach((pem, i) => trust.addCa(mspId, pem, i === 0 ? { crls: m.crls || [] } : {}));
  }
  return trust;
}
