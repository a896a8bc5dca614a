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
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.clock import now_ms
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
    from network.control import port_free

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
            from network.profile import NetworkProfile

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
        from gateway.anchoring.proof import EventProof, verify_offline
        from gateway.client import MemberClient
        from gateway.client.marketplace import auction_state, bid, open_auction
        from gateway.client.settlement import LedgerSigner
        from gateway.identity.certificates import TrustStore

        async def client(name: str) -> MemberClient:
            path, msp = self.members[name]
            c = MemberClient.from_msp(self.url, path, msp)
            await c.login()
            await c.connect()
            return c

        names = [n for n in self.members if n.startswith("bidder")]
        seller = await client("seller")
        bidders = {n: await client(n) for n in names}
        auditor = await client("auditor")
        everyone = [seller, auditor, *bidders.values()]
        try:
            auction_id = f"lot-{random.randint(100, 999)}"  # noqa: S311 - a demo name
            closes = now_ms() + int(self.args.auction_seconds * 1000)
            opened = await open_auction(
                seller,
                auction_id,
                item="40 t copper cathode, Rotterdam",
                closes_at_ms=closes,
                reserve=1000,
            )
            channel = opened["channel"]
            _say(
                "auction",
                f"{auction_id} open on channel {channel} for {self.args.auction_seconds:.0f} s "
                "(seller Org1, reserve 1000)",
            )
            for c in everyone:
                await c.join(channel)
            price, placed = 1000, 0
            rng = random.Random()  # noqa: S311 - simulated bidders
            while now_ms() < closes - 800:
                name = rng.choice(names)
                price += rng.randint(5, 60)
                ack = await bid(bidders[name], channel, price)
                placed += 1
                _say(
                    "bid",
                    f"{name} ({self.members[name][1]}) bids {price}: seq {ack.seq} {ack.status}",
                )
                await asyncio.sleep(rng.uniform(0.3, 0.9))
            while True:
                name, data = await seller.next_event(timeout=self.args.auction_seconds + 30)
                if name == "event" and data.get("type") == "auction.closed":
                    break
            state = await auction_state(seller, auction_id)
            winner = state["winner"]
            win_name = next(
                n
                for n, c in bidders.items()
                if c.session and c.session.fingerprint == winner["bidder"]["fingerprint"]
            )
            _say(
                "close",
                f"closed with {placed} bids: {win_name} wins at {winner['amount']} "
                f"(seq {winner['seq']})",
            )
            late = await bid(bidders[names[0]], channel, price + 1000)
            _say(
                "close",
                "a bid after the close is refused: "
                + (str(late.error["code"]) if late.error else "ACCEPTED?!"),
            )

            t0 = time.monotonic()
            while True:
                try:
                    proof = await seller.get(f"/events/{channel}/{winner['seq']}/proof")
                    if proof["status"] == "finalized":
                        break
                except Exception:  # noqa: S110 - not batched yet
                    pass
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("the winning bid was not finalized within 120 s")
                await asyncio.sleep(0.2)
            _say(
                "anchor",
                f"winning bid finalized in block {proof['anchor']['block_number']} "
                f"(batch {proof['batch']['batch_id']})",
            )
            buyer = LedgerSigner(bidders[win_name])
            steps = [(buyer, "propose"), (LedgerSigner(seller), "accept"), (buyer, "settle")]
            settled: list[dict[str, Any]] = []
            for who, action in steps:
                out = await who.settle(auction_id, action)
                settled.append(out)
                _say(
                    "settle",
                    f"{action:<7} signed by {'buyer' if who is buyer else 'seller'}: "
                    f"tx {out['tx_id'][:16]}… block {out['block_number']}",
                )

            detail = await seller.get(f"/marketplace/auctions/{auction_id}")
            bids = detail["bid_list"]
            pick = random.choice([b for b in bids if b["valid"]])  # noqa: S311
            while True:
                proof = await auditor.get(f"/events/{channel}/{pick['seq']}/proof")
                if proof["status"] == "finalized":
                    break
                await asyncio.sleep(0.2)
            trust = TrustStore.from_msp_dirs(self._auditor_msps())
            verdict = verify_offline(EventProof.from_json(proof), trust)
            _say(
                "audit",
                f"auditor (Org3) checks bid seq {pick['seq']} offline: "
                + ("VERIFIED" if verdict.ok else "FAILED " + verdict.summary()),
            )
            for check in verdict.checks:
                _say("audit", f"  {'ok ' if check.ok else 'FAIL'} {check.name}")
            ledger_ok = True
            if self.kind == "fabric":
                ledger_ok = await asyncio.to_thread(self._verify_on_ledger, proof, pick["seq"])
            self.summary = {
                "ledger": self.kind,
                "auction": auction_id,
                "bids": placed,
                "winner": f"{win_name} at {winner['amount']}",
                "settlement": " → ".join(
                    f"{s['function'].split(':')[1]}@{s['block_number']}" for s in settled
                ),
                "audit": f"bid seq {pick['seq']} {'VERIFIED' if verdict.ok else 'FAILED'}",
                "ok": verdict.ok and ledger_ok,
            }
        finally:
            for c in everyone:
                await c.close()

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
        from network.profile import NetworkProfile

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
