// A minimal Socket.IO v5 / Engine.IO v4 client over WebSocket (what the page needs:
// connect with an auth payload, emit with acknowledgement, receive events, ping/pong).
"use strict";
(function () {
  class MiniSocket {
    constructor(url, auth) {
      this.url = url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
      this.auth = auth;
      this.handlers = {};
      this.acks = new Map();
      this.nextAck = 1;
    }
    on(name, fn) { this.handlers[name] = fn; }
    connect() {
      return new Promise((resolve, reject) => {
        const ws = (this.ws = new WebSocket(this.url));
        ws.onmessage = (m) => this._packet(m.data, resolve, reject);
        ws.onerror = () => reject(new Error("WebSocket error"));
        ws.onclose = () => (this.handlers.disconnect || (() => {}))();
      });
    }
    _packet(data, resolve, reject) {
      const type = data[0];
      if (type === "0") { this.ws.send("40" + JSON.stringify(this.auth)); return; }
      if (type === "2") { this.ws.send("3"); return; }
      if (type !== "4") return;
      const sio = data[1], rest = data.slice(2);
      if (sio === "0") { resolve(); return; }
      if (sio === "4") { reject(new Error((JSON.parse(rest) || {}).message || "connection refused")); return; }
      let i = 0;
      while (i < rest.length && rest[i] >= "0" && rest[i] <= "9") i++;
      const id = i ? parseInt(rest.slice(0, i), 10) : null;
      const args = JSON.parse(rest.slice(i));
      if (sio === "3" && id !== null && this.acks.has(id)) {
        this.acks.get(id)(args[0]);
        this.acks.delete(id);
      } else if (sio === "2") {
        const fn = this.handlers[args[0]];
        if (fn) fn(args[1]);
      }
    }
    call(name, data) {
      const id = this.nextAck++;
      return new Promise((resolve) => {
        this.acks.set(id, resolve);
        this.ws.send("42" + id + JSON.stringify([name, data]));
      });
    }
  }
  window.AL = window.AL || {};
  window.AL.MiniSocket = MiniSocket;
})();
