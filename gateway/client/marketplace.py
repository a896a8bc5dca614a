"""Member-side marketplace calls: open an auction (signed terms), bid, read the board,
list settlements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from gateway.client.member import Ack, MemberClient, sign_event


def auction_channel(auction_id: str, premium: bool = False) -> str:
    return f"{'premium' if premium else 'auction'}-{auction_id}"


async def open_auction(
    client: MemberClient,
    auction_id: str,
    *,
    item: str,
    closes_at_ms: int,
    reserve: int = 1,
    premium: bool = False,
) -> dict[str, Any]:
    """Sign the auction's terms as the seller and open it; the auction's state."""
    channel = auction_channel(auction_id, premium)
    event = sign_event(
        client.signer,
        channel=channel,
        type="auction.open",
        payload={
            "auction_id": auction_id,
            "item": item,
            "reserve": reserve,
            "closes_at": closes_at_ms,
            "premium": premium,
        },
    )
    token = client.session.token if client.session else None
    result: dict[str, Any] = await client._post("/marketplace/auctions", event, token)
    return result


async def bid(client: MemberClient, channel: str, amount: int) -> Ack:
    """A signed bid over Socket.IO (join the channel first)."""
    return await client.emit(channel, "bid", {"amount": amount})


async def auction_state(client: MemberClient, auction_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await client.get(f"/marketplace/auctions/{auction_id}")
    return result


async def settlements(
    client: MemberClient,
    *,
    state: str | None = None,
    mine: bool = False,
    after: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of ``GET /marketplace/settlements``: ``{settlements, next_after}``.

    ``state``: ``Awaiting`` (closed with a winner, nothing signed yet),
    ``Proposed``, ``Accepted`` or ``Settled``; ``mine``: only those this member
    is buyer or seller of; ``after``: the previous page's ``next_after``.
    Raises :class:`~gateway.client.errors.GatewayRefused` (AL1913 for a bad filter).
    """
    query: dict[str, str] = {"limit": str(limit)}
    if state is not None:
        query["state"] = state
    if mine:
        query["party"] = "me"
    if after is not None:
        query["after"] = after
    result: dict[str, Any] = await client.get(f"/marketplace/settlements?{urlencode(query)}")
    return result


async def each_settlement(
    client: MemberClient,
    *,
    state: str | None = None,
    mine: bool = False,
    page_size: int = 100,
    max_pages: int = 1000,
) -> AsyncIterator[dict[str, Any]]:
    """Every settlement matching the filters, page after page (at most ``max_pages``)."""
    after: str | None = None
    for _ in range(max_pages):
        page = await settlements(client, state=state, mine=mine, after=after, limit=page_size)
        for item in page["settlements"]:
            yield item
        after = page.get("next_after")
        if after is None:
            return
