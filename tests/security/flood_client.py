"""A flooding member in its own process: ``python flood_client.py URL TOKEN FRAMES_FILE``.

Connects over a raw Socket.IO WebSocket, joins ``sec``, sends every line of
FRAMES_FILE (one event JSON per line) as an emit with an ack id as fast as
it can, reads every acknowledgement, and prints one JSON line:
``{"accepted", "refused", "codes", "by_code", "retry_after_min", "elapsed_s"}``.
A separate process, so the flood competes for the CPU as a real client
would instead of starving the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp


async def main(url: str, token: str, events: list[str]) -> None:
    ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        assert (await ws.receive_str(timeout=10)).startswith("0{")
        await ws.send_str("40" + json.dumps({"token": token}))

        async def text() -> str:
            while True:
                msg = await ws.receive(timeout=60)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(str(msg.type))
                if msg.data == "2":
                    await ws.send_str("3")
                    continue
                return str(msg.data)

        assert (await text()).startswith("40{")
        await ws.send_str('421["join",{"channel":"sec"}]')
        while not (await text()).startswith("431["):
            pass
        acks: list[dict[str, object]] = []

        async def reader() -> None:
            while len(acks) < len(events):
                t = await text()
                if t.startswith("43"):
                    acks.append(json.loads(t[t.index("[") :])[0])

        task = asyncio.create_task(reader())
        started = time.perf_counter()
        for k, event in enumerate(events):
            await ws.send_str(f'42{1000 + k}["event",{event}]')
            if k % 200 == 0:
                await asyncio.sleep(0)  # let the reader run
        await asyncio.wait_for(task, 120)
        elapsed = time.perf_counter() - started
    refused = [a for a in acks if "error" in a]
    errors: list[dict[str, object]] = [a["error"] for a in refused]  # type: ignore[misc]
    codes = sorted({str(e["code"]) for e in errors})
    retry = [float(a["error"]["retry_after"]) for a in refused]  # type: ignore[index]
    print(
        json.dumps(
            {
                "accepted": sum(1 for a in acks if a.get("status") == "pending"),
                "refused": len(refused),
                "codes": codes,
                "by_code": {c: sum(1 for e in errors if e["code"] == c) for c in codes},
                "retry_after_min": min(retry) if retry else None,
                "elapsed_s": elapsed,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]).read_text().splitlines()))
