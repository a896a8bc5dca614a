// A member app written from docs/member-guide.md alone: log in with an MSP folder, join,
// emit, lose the connection and resume, wait for finalized, verify the proof offline.
// Run: GATEWAY_URL=… MSP_DIR=… MSP_ID=… ORG_MSPS='{"Org1MSP":"…/msp",…}' node member-app.mjs
import { AnchorlineClient, AnchorlineError, verifyProof } from "@anchorline/client";
import { FileStorage, loadIdentity, trustFromMspDirs } from "@anchorline/client/file-storage";

const env = process.env;
const channel = env.CHANNEL ?? "market";
const identity = await loadIdentity(env.MSP_DIR, env.MSP_ID);
const client = new AnchorlineClient(env.GATEWAY_URL, identity, {
  storage: new FileStorage(env.SEQ_FILE ?? "last-seqs.json"),
});
let received = 0;
client.on("event", (e) => console.log(`event #${e.seq} ${e.type} from ${e.msp_id}`, ++received));
client.on("status", (s) => console.log(`status: seqs ${s.seqs.join(",")} ${s.status}`));
client.on("error", (e) => console.error(`error ${e.code}: ${e.reason}`));

try {
  const session = await client.login();
  console.log(`logged in as ${session.role} of ${session.mspId}`);
  await client.connect();
  const joined = await client.join(channel);
  console.log(`joined ${channel} at seq ${joined.last_seq}`);

  const first = await client.emit(channel, "bid", { item: "lot-7", amount: 12 });
  console.log(`stored as seq ${first.seq}`);

  // A dropped connection: the client reconnects and resumes after its last seq.
  const resumed = new Promise((resolve) => client.once("resumed", resolve));
  client.socket.io.engine.close();
  await resumed;
  console.log(`resumed after seq ${client.lastSeq(channel)}`);
  const second = await client.emit(channel, "bid", { item: "lot-7", amount: 15 });

  const final = await second.settled("finalized", { timeoutMs: 60_000 });
  console.log(`seq ${final.seq} finalized in block ${final.block_number}`);
  const verdict = await verifyProof(await client.proof(channel, second.seq), trustFromMspDirs(JSON.parse(env.ORG_MSPS)));
  for (const c of verdict.checks) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}`);
  const report = { verified: verdict.ok, seqs: [first.seq, second.seq], joined_at: joined.last_seq, received };
  console.log(JSON.stringify({ ...report, reconnects: client.reconnects }));
} catch (e) {
  if (!(e instanceof AnchorlineError)) throw e;
  console.error(`refused: ${e.code} ${e.reason}`);
  process.exitCode = 1;
} finally {
  await client.close();
}
