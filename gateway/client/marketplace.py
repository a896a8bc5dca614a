"""Member-side marketplace calls: open an auction (signed terms), bid, read the board."""

from __future__ import annotations

from typing import Any

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
