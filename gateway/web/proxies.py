"""The client's address behind trusted proxies (``gateway.trusted_proxies``).

A request's TCP peer is the client unless that peer is a trusted proxy; then
``X-Forwarded-For`` is read from the right (each proxy appends the address it
received the request from), skipping trusted proxies, and the first address
that is not one is the client. A header sent by an untrusted peer is ignored,
so a client cannot choose its own rate-limit bucket by forging it.

:func:`forwarded_middleware` gives every handler (the REST routes and the
Socket.IO endpoint alike) a request whose ``remote`` is that address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.errors import ConfigError
from gateway.web.access import CLIENT_ADDRESS

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TrustedProxies:
    """Parsed ``gateway.trusted_proxies``: addresses or CIDRs, comma-separated."""

    def __init__(self, spec: str) -> None:
        networks: list[_Network] = []
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"gateway.trusted_proxies: {entry!r} is not an IP address or CIDR"
                ) from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        if not address or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def client_address(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The client behind ``peer`` given the ``X-Forwarded-For`` header values.

        ``peer`` itself when it is not trusted or the header is absent; an
        unparseable entry ends the walk (everything left of it is unverifiable).
        """
        if not self.trusts(peer) or not forwarded_for:
            return peer
        hops = [h.strip() for value in forwarded_for for h in value.split(",")]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop.removeprefix("[").removesuffix("]"))
            except ValueError:
                break
            client = hop
            if not self.trusts(hop):
                break
        return client


def forwarded_middleware(proxies: TrustedProxies) -> Middleware:
    """A middleware that sets ``request.remote`` to the client behind trusted proxies."""

    @web.middleware
    async def forwarded(request: web.Request, handler: _Handler) -> web.StreamResponse:
        values = request.headers.getall("X-Forwarded-For", [])
        if not values:
            return await handler(request)
        client = proxies.client_address(request.remote, values)
        if client == request.remote or client is None:
            return await handler(request)
        request[CLIENT_ADDRESS] = client  # the access log sees the original request
        return await handler(request.clone(remote=client))

    return forwarded


__all__ = ["TrustedProxies", "forwarded_middleware"]
