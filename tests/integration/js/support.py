"""A gateway with the trust path on the embedded ledger, for the JavaScript client's tests.

``js_gateway(home)`` serves the gateway on a loopback port with members of three orgs
enrolled; ``run_node(script, env)`` runs a Node script of ``clients/js`` and returns its
JSON output. ``python -m tests.integration.js.support HOME`` serves one by hand (it
prints the URL and the MSP folders as JSON) for working on the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config import Settings, load_settings
from gateway.identity.ca import EmbeddedCA
from tests.integration.gateway.support import RunningGateway, running_gateway

ROOT = Path(__file__).resolve().parents[3]
JS_DIR = ROOT / "clients" / "js"
NODE = shutil.which("node")


def node_ready() -> str | None:
    """Why the JS tests cannot run here, or None when Node and the package's modules are there."""
    if NODE is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        return "clients/js/node_modules is missing: run scripts/setup (npm ci in clients/js)"
    return None


def js_settings(
    home: Path, *, batch_max_ms: int = 50, session_ttl_s: int | None = None
) -> Settings:
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(
            base.ledger, kind="embedded", embedded_contracts="chaincode.anchorline:CONTRACTS"
        ),
        gateway=dataclasses.replace(
            base.gateway,
            database_url=f"sqlite:///{home / 'events.db'}",
            sqlite_synchronous="NORMAL",
            session_ttl_s=session_ttl_s or base.gateway.session_ttl_s,
        ),
        anchoring=dataclasses.replace(base.anchoring, batch_max_ms=batch_max_ms),
    )


@dataclasses.dataclass
class JsGateway:
    gw: RunningGateway
    ca: EmbeddedCA
    members: dict[str, Path]  # name -> MSP folder
    msp_ids: dict[str, str]  # name -> MSP id

    @property
    def url(self) -> str:
        return self.gw.url

    def org_msps(self) -> dict[str, str]:
        """Every org MSP folder (what an auditor trusts), by MSP id."""
        return {self.ca.msp_id(o): str(self.ca.org_msp_dir(o)) for o in self.ca.orgs()}

    def env(self) -> dict[str, str]:
        """What the Node scripts read: the URL, the members' MSP folders, the org MSPs."""
        return {
            "ANCHORLINE_URL": self.url,
            "ANCHORLINE_MEMBERS": json.dumps(
                {n: {"dir": str(p), "msp_id": self.msp_ids[n]} for n, p in self.members.items()}
            ),
            "ANCHORLINE_TRUST": json.dumps(self.org_msps()),
        }


def serve_package(app: web.Application) -> None:
    """Serve the package to browsers: ``/js/src/``, ``/js/test/``, and socket.io-client's
    ESM build at ``/js/vendor/`` (what an import map points ``socket.io-client`` at)."""
    app.router.add_static("/js/src/", JS_DIR / "src")
    app.router.add_static("/js/test/", JS_DIR / "test")
    app.router.add_static("/js/vendor/", JS_DIR / "node_modules" / "socket.io-client" / "dist")


@contextlib.asynccontextmanager
async def js_gateway(
    home: Path,
    *,
    browser: bool = False,
    configure: Callable[[web.Application], None] | None = None,
    **kwargs: Any,
) -> AsyncIterator[JsGateway]:
    """The gateway (with ``browser``, also serving the package, see :func:`serve_package`;
    ``configure`` may add test routes before it starts)."""
    settings = js_settings(home, **kwargs)
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    who = {"js": ("Org1", "member"), "py": ("Org2", "member"), "auditor": ("Org3", "auditor")}
    members = {name: ca.enroll(org, f"{name}-user", role) for name, (org, role) in who.items()}
    msp_ids = {name: ca.msp_id(org) for name, (org, _) in who.items()}

    def setup(app: web.Application) -> None:
        if browser:
            serve_package(app)
        if configure is not None:
            configure(app)

    async with running_gateway(settings, ca, configure=setup) as gw:
        yield JsGateway(gw, ca, members, msp_ids)


async def run_node(
    script: Path | str,
    env: dict[str, str],
    *args: str,
    timeout: float = 120,
    cwd: Path = JS_DIR,
) -> dict[str, Any]:
    """Run ``node script args…`` (in clients/js by default); its last stdout line is JSON."""
    assert NODE is not None
    proc = await asyncio.create_subprocess_exec(
        NODE,
        str(script),
        *args,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"node {script} did not finish within {timeout} s") from None
    text = out.decode()
    if proc.returncode != 0:
        raise AssertionError(f"node {script} exited {proc.returncode}:\n{text}\n{err.decode()}")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"node {script} printed nothing; stderr:\n{err.decode()}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def _serve(home: Path) -> None:
    async with js_gateway(home) as g:
        print(json.dumps(g.env()), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
