"""Anchorline: live consortium events, signed by members and anchored on Hyperledger Fabric."""

__version__ = "0.1.0"
