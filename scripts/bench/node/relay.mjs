// Plain Socket.IO relay on Node's socket.io 4.x, for the side-by-side benchmark.
// The same protocol as the gateway's fast path, nothing else: `join` {channel}
// puts the socket in that room and acks {channel}; `event` acks
// {id, seq, status: "pending"} to the emitter and broadcasts the event to the
// room's other members. No authentication, signature check or storage.
//   node relay.mjs <node_modules> <port>
// Prints {"ready": true, "port": ...} once listening on 127.0.0.1; exits on SIGINT/SIGTERM.
import { createRequire } from "node:module";
import { createServer } from "node:http";

const [nodeModules, port] = process.argv.slice(2);
const require = createRequire(nodeModules + "/");
const { Server } = require("socket.io");

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  maxHttpBufferSize: 1e6,
});
let seq = 0;
io.on("connection", (socket) => {
  socket.on("join", (arg, ack) => {
    socket.join(arg.channel);
    if (typeof ack === "function") ack({ channel: arg.channel, seq });
  });
  socket.on("event", (ev, ack) => {
    seq += 1;
    if (typeof ack === "function") ack({ id: ev.id, seq, status: "pending" });
    socket.to(ev.channel).emit("event", { ...ev, seq });
  });
});
http.listen(Number(port), "127.0.0.1", () =>
  console.log(JSON.stringify({ ready: true, port: http.address().port })));
const stop = () => { io.close(); http.close(); process.exit(0); };
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
