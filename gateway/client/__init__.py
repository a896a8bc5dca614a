"""Client libraries for member and auditor applications."""

from gateway.client.errors import GatewayRefused
from gateway.client.member import Ack, MemberClient, Session, sign_event

__all__ = ["Ack", "GatewayRefused", "MemberClient", "Session", "sign_event"]
