"""Every code sample of docs/member-guide.md runs, and so does the example member app.

Samples are fenced blocks preceded by ``<!-- sample: js|python|browser|html -->``. The
``js`` samples, in order, form one ES module run by Node; the ``python`` samples, in
order, the body of one ``async`` function; the ``html`` import map and the ``browser``
sample run in headless Chromium. Every ``js``/``python`` block of the guide must be a
sample, and every ``json`` block must parse, so nothing shown goes untested.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gateway.client import MemberClient
from tests.integration.js.support import JS_DIR, ROOT, js_gateway, node_ready, run_node

GUIDE = ROOT / "docs" / "member-guide.md"
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))

_BLOCK = re.compile(
    r"^(?P<indent>[ ]*)(?:<!-- sample: (?P<kind>\w+) -->\n(?P=indent))?```(?P<lang>\w*)\n"
    r"(?P<body>.*?)^(?P=indent)```$",
    re.M | re.S,
)


def guide_blocks() -> list[dict[str, str]]:
    """Every fenced block of the guide: its language, sample kind (or ''), dedented body."""
    text = GUIDE.read_text(encoding="utf-8")
    return [
        {
            "lang": m["lang"],
            "kind": m["kind"] or "",
            "body": textwrap.dedent(m["body"]),
        }
        for m in _BLOCK.finditer(text)
    ]


def samples(kind: str) -> list[str]:
    return [b["body"] for b in guide_blocks() if b["kind"] == kind]


def test_every_code_block_of_the_guide_is_a_sample() -> None:
    blocks = guide_blocks()
    assert len(blocks) >= 15
    for block in blocks:
        if block["lang"] in ("js", "python", "html"):
            assert block["kind"], f"untested {block['lang']} block:\n{block['body']}"
        if block["lang"] == "json":
            json.loads(block["body"])
        assert block["lang"] in ("js", "python", "html", "json", "text"), block
    assert len(samples("js")) >= 5 and len(samples("python")) >= 5


def test_the_guide_lists_every_code_a_member_can_get() -> None:
    """Every code of the guide's table is documented, and every auth (AL15xx), event
    (AL16xx) and certificate (AL120x) code of docs/errors.md is in the table."""
    table = set(re.findall(r"^\| `(AL\d{4})` \|", GUIDE.read_text(encoding="utf-8"), re.M))
    documented = set(re.findall(r"^- `(AL\d{4})`", (ROOT / "docs" / "errors.md").read_text(), re.M))
    assert table <= documented, table - documented
    member_facing = {c for c in documented if re.match(r"AL1(5\d\d|6\d\d|20[1-8])$", c)}
    assert member_facing <= table, member_facing - table


def _member_env(g: Any, name: str, tmp: Path) -> dict[str, str]:
    return {
        "GATEWAY_URL": g.url,
        "MSP_DIR": str(g.members[name]),
        "MSP_ID": g.msp_ids[name],
        "ORG_MSPS": json.dumps(g.org_msps()),
        "SEQ_FILE": str(tmp / f"{name}-seqs.json"),
    }


async def test_guide_samples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with js_gateway(tmp_path / "home") as g:
        # JavaScript: one module, inside the package so "@anchorline/client" resolves.
        run_dir = Path(tempfile.mkdtemp(prefix=".guide-run-", dir=JS_DIR))
        try:
            module = run_dir / "guide.mjs"
            module.write_text("\n".join(samples("js")) + "\nconsole.log('{\"done\": true}');\n")
            env = _member_env(g, "js", tmp_path)
            out = await run_node(module, env, cwd=tmp_path)
            assert out == {"done": True}
        finally:
            shutil.rmtree(run_dir)
        # The sample's FileStorage path is relative to the working directory.
        assert json.loads((tmp_path / "last-seqs.json").read_text())["market"] >= 1

        # Python: the samples as the body of one coroutine, with the guide's env.
        for key, value in _member_env(g, "py", tmp_path).items():
            monkeypatch.setenv(key, value)
        body = textwrap.indent("\n".join(samples("python")), "    ")
        namespace: dict[str, Any] = {}
        exec(compile(f"async def guide():\n{body}\n", str(GUIDE), "exec"), namespace)
        await namespace["guide"]()


async def test_example_member_app(tmp_path: Path) -> None:
    """The example runs; run again after another member emitted, it catches up from its
    stored last seq (a restarted app misses nothing)."""
    app = JS_DIR / "examples" / "member-app.mjs"
    assert len(app.read_text().splitlines()) < 60
    async with js_gateway(tmp_path / "home") as g:
        env = {**_member_env(g, "js", tmp_path), "CHANNEL": "example"}
        out = await run_node(app, env)
        assert out["verified"] is True and out["reconnects"] == 1
        assert out["seqs"] == [1, 2] and out["joined_at"] == 0
        assert json.loads((tmp_path / "js-seqs.json").read_text())["example"] == 2

        other = MemberClient.from_msp(g.url, g.members["py"], g.msp_ids["py"])
        await other.login()
        await other.connect()
        await other.join("example")
        assert (await other.emit("example", "bid", {"item": "lot-7", "amount": 20})).ok
        await other.close()

        again = await run_node(app, env)
        assert again["verified"] is True
        assert again["joined_at"] == 3 and again["received"] >= 1  # seq 3, by catch-up
        assert again["seqs"] == [4, 5]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
async def test_guide_browser_samples(tmp_path: Path) -> None:
    """The guide's import map loads the package unbundled; its browser sample logs in."""
    playwright_api = pytest.importorskip("playwright.async_api")
    from aiohttp import web

    (html,) = samples("html")
    (browser_js,) = samples("browser")
    page: dict[str, str] = {}

    async def guide_page(_: web.Request) -> web.Response:
        return web.Response(text=page["html"], content_type="text/html")

    def routes(app: web.Application) -> None:
        # The guide's import map points at /vendor/: serve the package and socket.io there.
        app.router.add_get("/guide.html", guide_page)
        app.router.add_static("/vendor/anchorline/", JS_DIR / "src")
        app.router.add_static("/vendor/", JS_DIR / "node_modules" / "socket.io-client" / "dist")

    async with js_gateway(tmp_path / "home", configure=routes) as g:
        member = g.members["js"]
        secrets = {
            "certificatePem": next((member / "signcerts").iterdir()).read_text(),
            "keyPem": next((member / "keystore").iterdir()).read_text(),
        }
        page["html"] = (
            html
            + f"<script>Object.assign(window, {json.dumps(secrets)});</script>\n"
            + '<script type="module">\n'
            + browser_js
            + "document.body.dataset.role = client.session.role;\n</script><body></body>"
        )
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
            )
            try:
                tab = await browser.new_page()
                errors: list[str] = []
                tab.on("pageerror", lambda e: errors.append(str(e)))
                await tab.goto(g.url + "/guide.html")
                await tab.wait_for_selector("body[data-role]", state="attached", timeout=30_000)
                assert await tab.get_attribute("body", "data-role") == "member"
                assert not errors, errors
            finally:
                await browser.close()
