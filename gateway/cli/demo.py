"""``anchorline demo``: the reference scenario, end to end, on this machine.

Brings the ledger up (the native Fabric network when a Fabric install is
found, the embedded ledger otherwise — it says which), enrols a seller
(Org1), bidders (Org2, Org3), an Org1 admin and an auditor (Org3), starts the
gateway, runs a scripted auction with simulated bidders over Socket.IO,
settles it with transactions the buyer and the seller sign themselves,
verifies a random bid's proof as the auditor, prints a summary and leaves
the web page running (``--no-serve`` exits after the summary). Ctrl-C stops
every process it started, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.errors import AnchorlineError

REPO = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help="run the live marketplace demo end to end")
    parser.add_argument("--ledger", choices=("auto", "embedded", "fabric"), default="auto")
    parser.add_argument("--home", type=Path, help="state folder (default: a new temporary one)")
    parser.add_argument("--port", type=int, default=0, help="gateway port (default: a free one)")
    parser.add_argument("--auction-seconds", type=float, default=8.0)
    parser.add_argument("--bidders", type=int, default=4, help="simulated bidders (2..12)")
    parser.add_argument("--no-serve", action="store_true", help="exit after the summary")
    parser.set_defaults(handler=_run)


def _say(step: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {step:<10} {text}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_base_port() -> int:
    """The default 7100, or the first block of 100 free ports above the test suites' range."""
    from network.readiness import port_free

    for base in (7100, *range(16000, 20000, 200)):
        if all(port_free(p) for p in range(base, base + 100)):
            return int(base)
    raise RuntimeError("no block of 100 free ports for the network; stop another network")


def _fabric_found() -> bool:
    from gateway.config import load_settings
    from network.errors import FabricNotFound
    from network.install import find_fabric

    try:
        find_fabric(load_settings().fabric_home)
    except FabricNotFound:
        return False
    return True


def _cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"anchorline {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.home = (args.home or Path(tempfile.mkdtemp(prefix="anchorline-demo-"))).resolve()
        self.port = args.port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateway: subprocess.Popen[bytes] | None = None
        self.kind = args.ledger
        self.network_up = False
        self.env = {
            **os.environ,
            "ANCHORLINE_HOME": str(self.home),
            "ANCHORLINE_LEDGER_EMBEDDED_CONTRACTS": "chaincode.anchorline:CONTRACTS",
            "ANCHORLINE_ANCHORING_BATCH_MAX_MS": "100",
            "ANCHORLINE_GATEWAY_USE_UVLOOP": "false",
        }
        self.members: dict[str, tuple[Path, str]] = {}
        self._network: Any = None
        self.summary: dict[str, Any] = {}

    # -- ledger ----------------------------------------------------------------------------

    def ledger_up(self) -> None:
        chosen = self.kind != "auto"
        if not chosen:
            self.kind = "fabric" if _fabric_found() else "embedded"
        self.env["ANCHORLINE_LEDGER_KIND"] = self.kind
        if self.kind == "embedded":
            why = "chosen with --ledger" if chosen else "no Fabric install found"
            _say(
                "ledger",
                f"{why}: using the EMBEDDED ledger "
                "(same signed proposals, chaincode and blocks, in the gateway process)",
            )
            return
        _say(
            "ledger",
            "Fabric install found: starting the native Fabric network "
            "(3 orderers, 3 orgs; takes a minute)",
        )
        base = _free_base_port()
        self.env["ANCHORLINE_NETWORK_BASE_PORT"] = str(base)
        _cli(self.env, "network", "up")
        self.network_up = True
        _say("ledger", "deploying chaincode/ (anchor, settlement, access contracts)")
        _cli(
            self.env,
            "network",
            "deploy-chaincode",
            "chaincode",
            "--name",
            self.env.get("ANCHORLINE_NETWORK_CHAINCODE_NAME", "anchorline"),
        )

    def enrol(self) -> None:
        roster = [
            ("seller", "Org1", "member"),
            ("admin1", "Org1", "admin"),
            ("auditor", "Org3", "auditor"),
        ]
        orgs = ["Org2", "Org3"]
        n = max(2, min(12, self.args.bidders))
        roster += [(f"bidder{i + 1}", orgs[i % 2], "member") for i in range(n)]
        for name, org, role in roster:
            if self.kind == "embedded":
                from gateway.identity.ca import EmbeddedCA

                path = EmbeddedCA(self.home / "embedded" / "ca").enroll(org, name, role)
            else:
                path = self._fabric_network().enroll(org, name, role)
            self.members[name] = (path, f"{org}MSP")
        _say(
            "enrol",
            f"{len(roster)} identities: seller+admin (Org1), "
            f"{n} bidders (Org2, Org3), auditor (Org3)",
        )
        if self.kind == "fabric":
            from gateway.ledger.profile import NetworkProfile

            profile = NetworkProfile.load(self.home / "network" / "profile.json")
            org1 = profile.org("Org1")
            self.env["ANCHORLINE_LEDGER_MSP_DIR"] = str(org1.admin_msp_dir)

    def _fabric_network(self) -> Any:
        # In this process: one Python start instead of one per identity.
        if self._network is None:
            from gateway.cli.network import open_network
            from gateway.config import load_settings

            self._network = open_network(load_settings(self.env))
        return self._network

    # -- gateway ---------------------------------------------------------------------------

    def start_gateway(self) -> None:
        log = open(self.home / "gateway.log", "ab")  # noqa: SIM115 - the child owns it
        self.gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "gateway", "run", "--port", str(self.port)],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        import urllib.request

        while time.monotonic() < deadline:
            if self.gateway.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.home / 'gateway.log'}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        _say(
                            "gateway",
                            f"up at {self.url} (pid {self.gateway.pid}, "
                            f"log {self.home / 'gateway.log'})",
                        )
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the gateway did not answer /healthz within 60 s")

    def stop(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGINT)
            try:
                self.gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.wait()
            _say("stop", f"gateway (pid {self.gateway.pid}) stopped")
        if self.network_up:
            with contextlib.suppress(Exception):
                _cli(self.env, "network", "down")
                _say("stop", "Fabric network stopped")
            if self.args.home is None:
                # A temporary home: drop the ledgers (hundreds of MB of Raft logs), keep the logs.
                shutil.rmtree(self.home / "network" / "nodes", ignore_errors=True)

    # -- the scenario ----------------------------------------------------------------------

    async def scenario(self) -> None:
        """The reference scenario (gateway.cli.scenario) with simulated bidders, narrated."""
        from gateway.cli.scenario import Cast, Plan, run_scenario
        from gateway.identity.certificates import TrustStore

        cast = Cast(
            seller=self.members["seller"],
            bidders={n: who for n, who in self.members.items() if n.startswith("bidder")},
            admin=self.members["admin1"],
            auditor=self.members["auditor"],
        )
        plan = Plan(
            auction_s=self.args.auction_seconds,
            reserve=1000,
            item="40 t copper cathode, Rotterdam",
            # Fabric's first blocks after a deploy can take a while to be read back.
            finalize_timeout_s=120.0,
        )
        trust = TrustStore.from_msp_dirs(self._auditor_msps())
        outcome = await run_scenario(self.url, cast, trust, plan=plan, report=_say)
        ledger_ok = True
        if self.kind == "fabric":
            ledger_ok = await asyncio.to_thread(
                self._verify_on_ledger, outcome.audited_proof, outcome.audited_seq
            )
        self.summary = {
            "ledger": self.kind,
            "auction": outcome.auction_id,
            "bids": outcome.bids_placed,
            "winner": f"{outcome.winner} at {outcome.winning_amount}",
            "settlement": " → ".join(
                f"{s['function'].split(':')[1]}@{s['block_number']}" for s in outcome.settlements
            ),
            "audit": (
                f"bid seq {outcome.audited_seq} {'VERIFIED' if outcome.verdict.ok else 'FAILED'}"
            ),
            "ok": outcome.verdict.ok and ledger_ok,
        }

    def _verify_on_ledger(self, proof: dict[str, Any], seq: int) -> bool:
        """``anchorline verify`` with the auditor's identity through its own org's peer."""
        import json

        path = self.home / f"proof-{seq}.json"
        path.write_text(json.dumps(proof, indent=2))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "verify",
                str(path),
                "--msp",
                str(self.members["auditor"][0]),
                "--peer",
                str(self.home / "network" / "profile.json"),
            ],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        verdict = "VERIFIED" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        _say("audit", f"anchorline verify against the ledger via the auditor's own peer: {verdict}")
        if done.returncode != 0:
            print(done.stdout + done.stderr, flush=True)
        return done.returncode == 0

    def _auditor_msps(self) -> dict[str, Path]:
        if self.kind == "embedded":
            from gateway.identity.ca import EmbeddedCA

            ca = EmbeddedCA(self.home / "embedded" / "ca")
            return {ca.msp_id(o): ca.org_msp_dir(o) for o in ("Org1", "Org2", "Org3")}
        from gateway.ledger.profile import NetworkProfile

        profile = NetworkProfile.load(self.home / "network" / "profile.json")
        return {o.msp_id: Path(o.admin_msp_dir).parents[2] / "msp" for o in profile.orgs}


def _run(args: argparse.Namespace) -> int:
    demo = Demo(args)
    interrupted = False
    try:
        _say("setup", f"state in {demo.home}")
        demo.ledger_up()
        demo.enrol()
        demo.start_gateway()
        asyncio.run(demo.scenario())
        total = time.monotonic() - demo.started
        print("\n== Anchorline demo summary ==", flush=True)
        for key, value in demo.summary.items():
            if key != "ok":
                print(f"  {key:<11} {value}")
        print(f"  {'time':<11} {total:.1f} s")
        print(f"  {'web page':<11} {demo.url}/", flush=True)
        wallet = demo.members.get("bidder1")
        if wallet is not None:
            msp = wallet[0]
            key_file = next(iter(sorted((msp / "keystore").iterdir())), None)
            cert_file = msp / "signcerts" / "cert.pem"
            print(f"  {'log in as':<11} bidder1: choose {cert_file} and {key_file}")
        if not args.no_serve:
            print(
                "Serving the web page; press Ctrl-C to stop everything this demo started.",
                flush=True,
            )
            while demo.gateway is not None and demo.gateway.poll() is None:
                time.sleep(0.5)
        return 0 if demo.summary.get("ok") else 1
    except KeyboardInterrupt:
        interrupted = True
        return 130
    except (RuntimeError, OSError, TimeoutError, AnchorlineError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        demo.stop()
        if interrupted:
            print("demo stopped", flush=True)
