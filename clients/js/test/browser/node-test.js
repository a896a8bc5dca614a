// The part of node:test the package's tests use, for running them in a browser page
// (test/browser/index.html maps "node:test" here with an import map).
export const registered = [];

export function test(name, fn) {
  registered.push({ name, fn });
}

export async function runAll() {
  const results = [];
  for (const { name, fn } of registered) {
    const t0 = performance.now();
    try {
      await fn();
      results.push({ name, ok: true, ms: performance.now() - t0 });
    } catch (e) {
      results.push({ name, ok: false, error: String(e && e.stack ? e.stack : e) });
    }
  }
  return results;
}

export default test;
