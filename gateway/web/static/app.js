// The page: wallet login, live board with status badges, signed bids, in-browser proof check.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { token: null, key: null, certPem: null, identity: null, socket: null, channel: null, rows: new Map() };

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const data = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error((data && data.code ? data.code + ": " : "") + ((data && data.message) || res.statusText));
    return data;
  }

  async function readWallet(files) {
    let certPem = null, pkcs8 = null;
    for (const f of files) {
      for (const block of AL.pemBlocks(await f.text())) {
        if (block.type === "CERTIFICATE" && !certPem) certPem = block.pem;
        if (block.type === "PRIVATE KEY") pkcs8 = block.der;
      }
    }
    if (!certPem || !pkcs8) throw new Error("choose both the certificate (PEM) and the PKCS#8 private key (PEM)");
    return { certPem, key: await AL.importPrivateKey(pkcs8) };
  }

  async function login() {
    $("login-error").textContent = "";
    try {
      const wallet = await readWallet($("wallet").files);
      const ch = await api("POST", "/auth/challenge", { certificate: wallet.certPem });
      const signature = await AL.sign(wallet.key, AL.utf8(ch.challenge));
      const session = await api("POST", "/auth/session", {
        certificate: wallet.certPem, challenge: ch.challenge, signature: AL.b64(signature),
      });
      Object.assign(state, { token: session.token, key: wallet.key, certPem: wallet.certPem, identity: session.identity });
      $("who").textContent = `${session.identity.role} of ${session.identity.msp_id} · ${session.identity.fingerprint.slice(0, 12)}…`;
      state.socket = new AL.MiniSocket(location.origin, { token: session.token });
      state.socket.on("event", onEvent);
      state.socket.on("status", onStatus);
      state.socket.on("kicked", (k) => { $("auction-info").textContent = `removed from ${k.channel}: ${k.message}`; });
      await state.socket.connect();
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
    const list = await api("GET", "/marketplace/auctions");
    const sel = $("auctions");
    sel.innerHTML = "<option value=''>auctions…</option>";
    for (const a of list.auctions) {
      const o = document.createElement("option");
      o.value = a.channel;
      o.textContent = `${a.item} (${a.state})`;
      sel.appendChild(o);
    }
  }

  function badge(status) { return `<span class="badge ${status}">${status}</span>`; }

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
    tr.innerHTML = `<td>${ev.seq}</td><td>${ev.type}</td><td>${ev.msp_id} <span class="mono">${ev.signer.slice(0, 8)}</span></td>` +
      `<td>${detail(ev)}</td><td>${badge(st)}</td>` +
      `<td class="mono">${ev.tx_id ? ev.tx_id.slice(0, 12) + "… #" + (ev.block_number ?? "–") : ""}</td>` +
      `<td><button data-audit="${ev.seq}">verify</button></td>`;
    tr.querySelector("button").onclick = () => { $("audit-channel").value = ev.channel; $("audit-seq").value = ev.seq; verify(); };
    tr._event = ev;
  }

  function onEvent(ev) { if (ev.channel === state.channel) render(ev); }

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
    const res = await state.socket.call("join", { channel, after: 0 });
    if (res.error) { $("auction-info").textContent = res.error.code + ": " + res.error.message; return; }
    state.channel = channel;
    $("channel").value = channel;
    $("auction-info").textContent = `joined ${channel} (last seq ${res.last_seq})`;
    document.body.dataset.joined = channel;
    // Statuses of events already on the board (catch-up sends their status, not their anchor).
    const page = await api("GET", `/events/${channel}?after=0&limit=1000`);
    for (const ev of page.events) {
      const full = await api("GET", `/events/${channel}/${ev.seq}`);
      render(full);
    }
  }

  async function placeBid() {
    const amount = parseInt($("amount").value, 10);
    const body = { id: crypto.randomUUID(), channel: state.channel, type: "bid", payload: { amount }, client_ts: Date.now() };
    const signature = await AL.sign(state.key, AL.utf8(AL.canonical(body)));
    const ack = await state.socket.call("event", { ...body, signature: AL.b64(signature) });
    $("bid-result").textContent = ack.error ? `refused: ${ack.error.code} ${ack.error.message}` : `stored as seq ${ack.seq} (${ack.status})`;
    if (!ack.error) render({ ...body, seq: ack.seq, msp_id: state.identity.msp_id, signer: state.identity.fingerprint, status: ack.status });
  }

  async function verify() {
    const channel = $("audit-channel").value.trim(), seq = $("audit-seq").value;
    $("checks").innerHTML = "";
    $("verdict").textContent = "";
    $("verdict").className = "verdict";
    try {
      const proof = await api("GET", `/events/${channel}/${seq}/proof`);
      const checks = await AL.verifyProof(proof);
      for (const c of checks) {
        const li = document.createElement("li");
        li.className = c.ok ? "ok" : "fail";
        li.textContent = `${c.name} ${c.detail}`;
        $("checks").appendChild(li);
      }
      const ok = checks.every((c) => c.ok);
      $("verdict").textContent = ok
        ? `VERIFIED: ${channel}/${seq} signed by ${proof.event.msp_id}, in batch ${proof.batch.batch_id}, anchored in block ${proof.anchor.block_number}`
        : "NOT VERIFIED: see the failed checks";
      $("verdict").classList.add(ok ? "ok" : "fail");
      document.body.dataset.verdict = ok ? "ok" : "fail";
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
  window.ALPage = { join, verify, state };
})();
