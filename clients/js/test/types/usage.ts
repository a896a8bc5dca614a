// Compiled by `npm run types` (tsc --noEmit): the declarations describe how apps use the package.
import { AnchorlineClient, AnchorlineError, TrustStore, verifyProof, type StoredEvent } from "@anchorline/client";
import { FileStorage, loadIdentity, trustFromMspDirs } from "@anchorline/client/file-storage";

async function app(url: string, mspDir: string): Promise<boolean> {
  const identity = await loadIdentity(mspDir, "Org1MSP");
  const client = new AnchorlineClient(url, identity, { storage: new FileStorage("/tmp/seqs.json") });
  client.on("event", (e: StoredEvent) => console.log(e.seq, e.payload));
  client.on("error", (e: AnchorlineError) => console.log(e.code));
  await client.login();
  await client.connect();
  await client.join("market");
  const ack = await client.emit("market", "bid", { amount: 12 });
  const status = await ack.settled("finalized");
  const proof = await client.proof("market", status.seq);
  const trust: TrustStore = trustFromMspDirs({ Org1MSP: mspDir });
  const verdict = await verifyProof(proof, trust);
  return verdict.ok && verdict.checks.every((c) => c.ok);
}
void app;
