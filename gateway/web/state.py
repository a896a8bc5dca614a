"""The typed application state shared by the HTTP routes and the app factory."""

from __future__ import annotations

import dataclasses

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth.authorizer import Authorizer
from gateway.auth.sessions import SessionService
from gateway.config import Settings
from gateway.events.metrics import GatewayMetrics
from gateway.events.pipeline import EventPipeline
from gateway.store.auth import AuthRepository
from gateway.store.events import EventRepository
from gateway.store.trust import EventStatusRepository
from gateway.stream.hub import Hub


@dataclasses.dataclass(frozen=True)
class GatewayContext:
    """Every long-lived object of one gateway process."""

    settings: Settings
    ledger: str
    engine: AsyncEngine
    events: EventRepository
    auth: AuthRepository
    statuses: EventStatusRepository
    sessions: SessionService
    authorizer: Authorizer
    pipeline: EventPipeline
    hub: Hub
    metrics: GatewayMetrics


CONTEXT: web.AppKey[GatewayContext] = web.AppKey("anchorline_gateway", GatewayContext)
