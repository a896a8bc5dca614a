"""Plain Socket.IO relay on stock python-socketio (AsyncServer on aiohttp).

The same protocol as the gateway's fast path and as ``node/relay.mjs``:
``join`` {channel} enters the room and acks {channel}; ``event`` acks
{id, seq, status: "pending"} to the emitter and broadcasts the event to the
room's other members (``skip_sid``). No authentication, signature check or
storage: what the library gives a user who writes a relay the obvious way.

    .venv/bin/python scripts/bench/stock_relay.py PORT

Listens on 127.0.0.1, prints {"ready": true} once listening. Nothing is
tuned: no frame is deflated only because the load generator's clients do not
offer WebSocket compression. The event loop is uvloop when installed, as the
gateway's is, so the comparison is of the Socket.IO layer, not of the loop.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import socketio
from aiohttp import web


def build() -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp", transports=["websocket"], http_compression=False
    )
    app = web.Application()
    sio.attach(app)
    state = {"seq": 0}

    @sio.on("join")  # type: ignore[untyped-decorator,misc]
    async def join(sid: str, arg: dict[str, Any]) -> dict[str, Any]:
        await sio.enter_room(sid, arg["channel"])
        return {"channel": arg["channel"], "seq": state["seq"]}

    @sio.on("event")  # type: ignore[untyped-decorator,misc]
    async def event(sid: str, ev: dict[str, Any]) -> dict[str, Any]:
        state["seq"] += 1
        seq = state["seq"]
        # The ack is returned at once; the broadcast runs beside it, as a relay would.
        asyncio.get_running_loop().create_task(
            sio.emit("event", {**ev, "seq": seq}, room=ev["channel"], skip_sid=sid)
        )
        return {"id": ev["id"], "seq": seq, "status": "pending"}

    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(build())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(json.dumps({"ready": True, "port": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
