"""The web page in headless Chromium: wallet login, live board with finalized badges, and
an in-browser proof verification. Screenshots are kept under artifacts/browser/."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.cli.scenario import wait_for
from gateway.client import MemberClient
from gateway.client.marketplace import auction_channel, bid, open_auction
from gateway.identity.ca import EmbeddedCA
from tests.integration.gateway.support import running_gateway
from tests.integration.marketplace.support import market_settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
]


def _org_cas(ca: EmbeddedCA) -> list[str]:
    """The CA certificate of every org MSP: what the page's verifier trusts."""
    return [str(p) for o in ca.orgs() for p in sorted((ca.org_msp_dir(o) / "cacerts").iterdir())]


def _wallet(msp: Path) -> list[str]:
    return [str(next((msp / "signcerts").iterdir())), str(next((msp / "keystore").iterdir()))]


async def test_board_finalized_and_proof_verified_in_browser(tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    settings = market_settings(tmp_path)
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    seller_msp = ca.enroll("Org1", "seller", "member")
    browser_msp = ca.enroll("Org2", "webbidder", "member")
    other_msp = ca.enroll("Org3", "bidder3", "member")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async with running_gateway(settings, ca) as gw, playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            await page.goto(gw.url + "/")
            await page.set_input_files("#wallet", _wallet(browser_msp))
            await page.click("#login-btn")
            await page.wait_for_selector("body[data-logged-in='1']", timeout=15_000)

            seller = MemberClient.from_msp(gw.url, seller_msp, "Org1MSP")
            other = MemberClient.from_msp(gw.url, other_msp, "Org3MSP")
            for c in (seller, other):
                await c.login()
                await c.connect()
            auction_id = f"web{int(time.time()) % 100000}"
            channel = auction_channel(auction_id)
            await open_auction(
                seller,
                auction_id,
                item="Lot 12: 3 t cobalt",
                reserve=100,
                closes_at_ms=int(time.time() * 1000) + 6000,
            )
            await seller.join(channel)
            await other.join(channel)

            await page.fill("#channel", channel)
            await page.click("#join-btn")
            await page.wait_for_selector(f"body[data-joined='{channel}']", timeout=10_000)
            assert (await bid(other, channel, 200)).ok
            await page.fill("#amount", "260")
            await page.click("#bid-btn")  # signed by WebCrypto in the page
            await page.wait_for_function(
                "document.getElementById('bid-result').textContent.startsWith('stored as seq')",
                timeout=10_000,
            )
            assert (await bid(other, channel, 240)).ok

            _, closed = await wait_for(
                seller, lambda n, d: n == "event" and d.get("type") == "auction.closed", timeout=20
            )
            assert closed["payload"]["winner"]["amount"] == 260
            # Every bid on the board reaches finalized, pushed live, with tx id and block.
            await page.wait_for_function(
                """() => {
                  const rows = [...document.querySelectorAll('#board tbody tr')]
                    .filter(r => r.children[1].textContent === 'bid');
                  return rows.length === 3 && rows.every(r => r.className === 'ev-finalized'
                    && r.children[5].textContent.includes('#'));
                }""",
                timeout=60_000,
            )
            await page.screenshot(path=str(ARTIFACTS / "board-finalized.png"), full_page=True)

            web_bid = await page.eval_on_selector_all(
                "#board tbody tr",
                "rows => rows.find(r => r.children[3].textContent === '260').dataset.seq",
            )
            await page.set_input_files("#trust", _org_cas(ca))
            await page.click(f"button[data-audit='{web_bid}']")
            await page.wait_for_selector("body[data-verdict]", timeout=15_000)
            verdict = await page.get_attribute("body", "data-verdict")
            checks = await page.eval_on_selector_all(
                "#checks li", "items => items.map(i => i.className + ' ' + i.textContent)"
            )
            await page.screenshot(path=str(ARTIFACTS / "proof-verified.png"), full_page=True)
            assert verdict == "ok", checks
            # Nine checks: the certificate chains to the orgs' CAs included.
            assert len(checks) == 9 and all(c.startswith("ok") for c in checks), checks

            # Tampering is caught in the browser as well: a changed amount breaks the proof.
            tampered = await page.evaluate(
                """async ([ch, seq]) => {
                  const res = await fetch(`/events/${ch}/${seq}/proof`,
                    {headers: {Authorization: 'Bearer ' + ALPage.state.token}});
                  const proof = await res.json();
                  proof.event.record.payload.amount = 1;
                  const verdict = await ALPage.verifyProof(proof);
                  return verdict.checks.filter(c => !c.ok).map(c => c.name);
                }""",
                [channel, int(web_bid)],
            )
            assert "event-signature" in tampered and "inclusion" in tampered
            for c in (seller, other):
                await c.close()
        finally:
            await browser.close()
            await asyncio.sleep(0)
