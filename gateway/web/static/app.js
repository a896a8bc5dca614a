// The page: wallet login, live board with status badges, signed bids, in-browser proof
// check with the certificate chains. Built on the JS client package (@anchorline/client,
// clients/js), loaded unbundled through the import map of index.html.
import { AnchorlineClient, Identity, TrustStore, Certificate, verifyProof } from "@anchorline/client";

const $ = (id) => document.getElementById(id);
const state = { client: null, identity: null, channel: null, rows: new Map(), trust: new TrustStore() };

async function readWallet(files) {
  let certPem = null;
  let keyPem = null;
  for (const f of files) {
    const text = await f.text();
    const cert = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(text);
    if (cert && !certPem) certPem = cert[0] + "\n";
    if (/-----BEGIN (EC )?PRIVATE KEY-----/.test(text)) keyPem = text;
  }
  if (!certPem || !keyPem) throw new Error("choose both the certificate (PEM) and the PKCS#8 private key (PEM)");
  return Identity.fromPem(certPem, keyPem);
}

/**
 * The CA certificates chosen in #trust. A file input gives no folder names, so each CA
 * is trusted for the MSP its organisation names, `<O>MSP` (Fabric's sample naming:
 * O=org1 is Org1MSP).
 */
async function readTrust(files) {
  const trust = new TrustStore();
  for (const f of files) {
    for (const cert of Certificate.all(await f.text())) {
      const org = (/(?:^|,)O=((?:\\.|[^,\\])+)/.exec(cert.subject) || [])[1] || cert.commonName;
      trust.addCa(org.charAt(0).toUpperCase() + org.slice(1) + "MSP", cert.der);
    }
  }
  return trust;
}

async function login() {
  $("login-error").textContent = "";
  try {
    const identity = await readWallet($("wallet").files);
    const client = new AnchorlineClient(location.origin, identity);
    const session = await client.login();
    Object.assign(state, { client, identity, token: session.token });
    $("who").textContent = `${session.role} of ${session.mspId} · ${session.fingerprint.slice(0, 12)}…`;
    client.on("event", onEvent);
    client.on("status", onStatus);
    client.on("session", (s) => (state.token = s.token));
    client.on("kicked", (k) => ($("auction-info").textContent = `removed from ${k.channel}: ${k.message}`));
    await client.connect();
    $("login-view").classList.add("hidden");
    $("board-view").classList.remove("hidden");
    $("audit-view").classList.remove("hidden");
    document.body.dataset.loggedIn = "1";
    await loadAuctions();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
}

async function loadAuctions() {
  const list = await state.client.get("/marketplace/auctions");
  const sel = $("auctions");
  sel.innerHTML = "<option value=''>auctions…</option>";
  for (const a of list.auctions) {
    const o = document.createElement("option");
    o.value = a.channel;
    o.textContent = `${a.item} (${a.state})`;
    sel.appendChild(o);
  }
}

function badge(status) {
  return `<span class="badge ${status}">${status}</span>`;
}

function detail(ev) {
  const p = ev.payload || {};
  if (ev.type === "bid") return String(p.amount);
  if (ev.type === "auction.open") return `${p.item} · reserve ${p.reserve} · closes ${new Date(p.closes_at).toLocaleTimeString()}`;
  if (ev.type === "auction.closed") return p.winner ? `winner ${p.winner.bidder.msp_id} at ${p.winner.amount}` : "no valid bid";
  if (ev.type === "settlement.status") return `${p.state} · tx ${String(p.tx_id).slice(0, 12)}… · block ${p.block_number}`;
  return JSON.stringify(p).slice(0, 60);
}

function render(ev) {
  let tr = state.rows.get(ev.seq);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.seq = ev.seq;
    const rows = [...$("board").tBodies[0].rows];
    const after = rows.find((r) => Number(r.dataset.seq) > ev.seq);
    $("board").tBodies[0].insertBefore(tr, after || null);
    state.rows.set(ev.seq, tr);
  }
  const st = ev.status || "pending";
  tr.className = "ev-" + st;
  tr.innerHTML =
    `<td>${ev.seq}</td><td>${ev.type}</td><td>${ev.msp_id} <span class="mono">${ev.signer.slice(0, 8)}</span></td>` +
    `<td>${detail(ev)}</td><td>${badge(st)}</td>` +
    `<td class="mono">${ev.tx_id ? ev.tx_id.slice(0, 12) + "… #" + (ev.block_number ?? "–") : ""}</td>` +
    `<td><button data-audit="${ev.seq}">verify</button></td>`;
  tr.querySelector("button").onclick = () => {
    $("audit-channel").value = ev.channel;
    $("audit-seq").value = ev.seq;
    verify();
  };
  tr._event = ev;
}

function onEvent(ev) {
  if (ev.channel === state.channel) render(ev);
}

function onStatus(s) {
  if (s.channel !== state.channel) return;
  for (const seq of s.seqs) {
    const tr = state.rows.get(seq);
    if (tr && tr._event) render({ ...tr._event, status: s.status, tx_id: s.tx_id, block_number: s.block_number });
  }
}

async function join(channel) {
  channel = channel || $("channel").value.trim();
  if (!channel) return;
  state.channel = channel;
  let res;
  try {
    res = await state.client.join(channel, { after: 0 });
  } catch (e) {
    $("auction-info").textContent = e.message;
    return;
  }
  $("channel").value = channel;
  $("auction-info").textContent = `joined ${channel} (last seq ${res.last_seq})`;
  document.body.dataset.joined = channel;
  // Statuses of events already on the board (catch-up sends their status, not their anchor).
  const page = await state.client.get(`/events/${channel}?after=0&limit=1000`);
  for (const ev of page.events) render(await state.client.get(`/events/${channel}/${ev.seq}`));
}

async function placeBid() {
  const amount = parseInt($("amount").value, 10);
  try {
    const ack = await state.client.emit(state.channel, "bid", { amount });
    $("bid-result").textContent = `stored as seq ${ack.seq} (${ack.status})`;
    const { mspId, fingerprint } = state.client.session;
    render({ channel: state.channel, type: "bid", payload: { amount }, seq: ack.seq, msp_id: mspId, signer: fingerprint, status: ack.status });
  } catch (e) {
    $("bid-result").textContent = `refused: ${e.code} ${e.reason}`;
  }
}

async function verify() {
  const channel = $("audit-channel").value.trim();
  const seq = $("audit-seq").value;
  $("checks").innerHTML = "";
  $("verdict").textContent = "";
  $("verdict").className = "verdict";
  try {
    state.trust = await readTrust($("trust").files);
    const proof = await state.client.proof(channel, seq);
    const verdict = await verifyProof(proof, state.trust);
    for (const c of verdict.checks) {
      const li = document.createElement("li");
      li.className = c.ok ? "ok" : "fail";
      li.textContent = `${c.name} ${c.detail}`;
      $("checks").appendChild(li);
    }
    $("verdict").textContent = verdict.ok
      ? `VERIFIED: ${channel}/${seq} signed by ${proof.event.msp_id}, in batch ${proof.batch.batch_id}, anchored in block ${proof.anchor.block_number}`
      : "NOT VERIFIED: see the failed checks";
    $("verdict").classList.add(verdict.ok ? "ok" : "fail");
    document.body.dataset.verdict = verdict.ok ? "ok" : "fail";
  } catch (e) {
    $("verdict").textContent = "error: " + e.message;
    $("verdict").classList.add("fail");
    document.body.dataset.verdict = "error";
  }
}

$("login-btn").onclick = login;
$("join-btn").onclick = () => join();
$("auctions").onchange = (e) => e.target.value && join(e.target.value);
$("bid-btn").onclick = placeBid;
$("verify-btn").onclick = verify;
window.ALPage = { join, verify, state, verifyProof: (proof) => verifyProof(proof, state.trust) };
