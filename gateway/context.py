"""The long-lived objects of one gateway process and the app keys they are found by.

Built by the composition root (:func:`gateway.app.create_app`); the HTTP
routes (:mod:`gateway.web`) read them from the application through
:data:`CONTEXT`, :data:`ANCHORING` and :data:`MARKETPLACE`. Tests and tools
may set :data:`ANCHORING_CONNECT` on the app before it starts to choose the
trust path's ledger connection. Domain packages never see this
object: they get the narrow collaborators they need, here or in ``app.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.anchoring.evidence import Evidence
from gateway.anchoring.ledger import FabricAnchorLedger
from gateway.anchoring.service import AnchoringService
from gateway.auth.authorizer import Authorizer
from gateway.auth.sessions import SessionService
from gateway.config import Settings
from gateway.events.intake import IntakeLimits
from gateway.events.metrics import GatewayMetrics
from gateway.events.pipeline import EventPipeline
from gateway.ledger.connection import LedgerConnection
from gateway.marketplace.service import MarketplaceService
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
    limits: IntakeLimits


@dataclasses.dataclass
class AnchoringRuntime:
    """The running trust path (absent when ``anchoring.enabled`` is off)."""

    service: AnchoringService
    evidence: Evidence
    connection: LedgerConnection
    ledger: FabricAnchorLedger


class MarketplaceSlot:
    """Filled when the app starts (an app's state cannot change once it runs)."""

    service: MarketplaceService | None = None


CONTEXT: web.AppKey[GatewayContext] = web.AppKey("anchorline_gateway", GatewayContext)
MARKETPLACE: web.AppKey[MarketplaceSlot] = web.AppKey("anchorline_marketplace", MarketplaceSlot)
ANCHORING: web.AppKey[AnchoringRuntime] = web.AppKey("anchorline_anchoring", AnchoringRuntime)
ANCHORING_CONNECT: web.AppKey[Callable[[Settings], LedgerConnection]] = web.AppKey(
    "anchorline_anchoring_connect",
    Callable[[Settings], LedgerConnection],  # type: ignore[arg-type]
)

__all__ = [
    "ANCHORING",
    "ANCHORING_CONNECT",
    "CONTEXT",
    "MARKETPLACE",
    "AnchoringRuntime",
    "GatewayContext",
    "MarketplaceSlot",
]
