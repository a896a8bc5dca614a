// The official Node Fabric Gateway client against a Gateway endpoint.
// Reads a JSON config on argv[2]; prints one JSON line with what it saw.
// Bounded: every call has a deadline and the process exits when done.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { createPrivateKey } from "node:crypto";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const require = createRequire(cfg.node_modules + "/");
const grpc = require("@grpc/grpc-js");
const { connect, hash, signers } = require("@hyperledger/fabric-gateway");

const credentials = cfg.tls_ca
  ? grpc.credentials.createSsl(readFileSync(cfg.tls_ca))
  : grpc.credentials.createInsecure();
const options = cfg.server_name ? { "grpc.ssl_target_name_override": cfg.server_name } : {};
const client = new grpc.Client(cfg.address, credentials, options);
const gateway = connect({
  client,
  identity: { mspId: cfg.msp_id, credentials: readFileSync(cfg.cert) },
  signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(cfg.key_file))),
  hash: hash.sha256,
  evaluateOptions: () => ({ deadline: Date.now() + 5000 }),
  endorseOptions: () => ({ deadline: Date.now() + 15000 }),
  submitOptions: () => ({ deadline: Date.now() + 5000 }),
  commitStatusOptions: () => ({ deadline: Date.now() + 60000 }),
});
const out = {};
const text = (bytes) => Buffer.from(bytes).toString("utf8");
try {
  const network = gateway.getNetwork(cfg.channel);
  const contract = network.getContract(cfg.chaincode);
  const submitted = await contract.submitAsync("PutWithEvent", { arguments: [cfg.state_key, "from-node"] });
  const status = await submitted.getStatus();
  out.submit = { tx: submitted.getTransactionId(), code: status.code, block: Number(status.blockNumber), ok: status.successful };
  out.evaluate = text(await contract.evaluateTransaction("Get", cfg.state_key));
  try {
    await contract.submitTransaction("Fail", "node says no");
    out.fail = null;
  } catch (err) {
    out.fail = { name: err.constructor.name, code: err.code, details: (err.details || []).map((d) => d.message) };
  }
  try {
    await contract.evaluateTransaction("Fail", "node evaluate");
  } catch (err) {
    out.evaluate_fail = { name: err.constructor.name, code: err.code, message: err.message };
  }
  const events = await network.getChaincodeEvents(cfg.chaincode, { startBlock: BigInt(out.submit.block) });
  try {
    for await (const event of events) {
      out.event = { tx: event.transactionId, name: event.eventName, block: Number(event.blockNumber), payload: JSON.parse(text(event.payload)) };
      break;
    }
  } finally {
    events.close();
  }
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  gateway.close();
  client.close();
}
console.log(JSON.stringify(out));
