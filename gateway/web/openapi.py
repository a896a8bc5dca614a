"""The OpenAPI 3.1 document of the REST surface (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(schema_ref: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_CHANNEL = {
    "name": "channel",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
}


def openapi_document() -> dict[str, Any]:
    """The document; stable for a given gateway version."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Anchorline gateway",
            "version": "0.1.0",
            "description": (
                "Login with an X.509 challenge, then read a channel's signed events. "
                "Live events flow over Socket.IO at /socket.io/ (see gateway.stream.hub). "
                "Every error is {code, message}; codes are listed in docs/errors.md."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "pattern": "^AL[0-9]{4}$"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                },
                "Challenge": {
                    "type": "object",
                    "required": ["nonce", "challenge", "expires_at", "domain"],
                    "properties": {
                        "nonce": {"type": "string"},
                        "challenge": {
                            "type": "string",
                            "description": "Sign these exact UTF-8 bytes "
                            "(ECDSA-SHA256, DER, base64).",
                        },
                        "expires_at": {"type": "integer", "description": "Unix ms"},
                        "domain": {"type": "string"},
                    },
                },
                "Session": {
                    "type": "object",
                    "required": ["session_id", "token", "expires_at", "refresh_token"],
                    "properties": {
                        "session_id": {"type": "string"},
                        "token": {"type": "string"},
                        "expires_at": {"type": "integer"},
                        "refresh_token": {"type": "string"},
                        "refresh_expires_at": {"type": "integer"},
                        "identity": {
                            "type": "object",
                            "properties": {
                                "fingerprint": {"type": "string"},
                                "msp_id": {"type": "string"},
                                "role": {"type": "string"},
                            },
                        },
                    },
                },
                "Event": {
                    "type": "object",
                    "required": ["id", "channel", "seq", "type", "payload", "client_ts"],
                    "properties": {
                        "id": {"type": "string"},
                        "channel": {"type": "string"},
                        "seq": {"type": "integer"},
                        "type": {"type": "string"},
                        "payload": {},
                        "client_ts": {"type": "integer"},
                        "signer": {
                            "type": "string",
                            "description": "SHA-256 of the signer's certificate",
                        },
                        "msp_id": {"type": "string"},
                        "signature": {
                            "type": "string",
                            "description": "base64 DER ECDSA-SHA256 over the RFC 8785 JSON of "
                            "{id, channel, type, payload, client_ts}",
                        },
                        "received_at": {"type": "integer"},
                        "status": {"type": "string", "enum": ["pending", "confirmed", "finalized"]},
                        "tx_id": {"type": ["string", "null"]},
                        "block_number": {"type": ["integer", "null"]},
                    },
                },
                "EventPage": {
                    "type": "object",
                    "required": ["channel", "events", "next_after", "more"],
                    "properties": {
                        "channel": {"type": "string"},
                        "events": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                        "next_after": {"type": "integer"},
                        "more": {"type": "boolean"},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "ledger", "database"],
                    "properties": {
                        "status": {"type": "string"},
                        "ledger": {"type": "string"},
                        "database": {"type": "string"},
                        "connected_clients": {"type": "integer"},
                        "commit_queue_depth": {"type": "integer"},
                    },
                },
            },
        },
        "paths": {
            "/auth/challenge": {
                "post": {
                    "summary": "Get a single-use login challenge for a certificate",
                    "requestBody": _json_body(
                        {
                            "type": "object",
                            "required": ["certificate"],
                            "properties": {"certificate": {"type": "string", "description": "PEM"}},
                        }
                    ),
                    "responses": {
                        "200": _ok("Challenge"),
                        "400": _err("malformed request or certificate"),
                        "429": _err("rate limited"),
                    },
                }
            },
            "/auth/session": {
                "post": {
                    "summary": "Answer a challenge and open a session",
                    "requestBody": _json_body(
                        {
                            "type": "object",
                            "required": ["certificate", "challenge", "signature"],
                            "properties": {
                                "certificate": {"type": "string"},
                                "challenge": {"type": "string"},
                                "signature": {"type": "string"},
                            },
                        }
                    ),
                    "responses": {
                        "200": _ok("Session"),
                        "400": _err("malformed request"),
                        "401": _err("refused: the code says why"),
                        "429": _err("rate limited"),
                    },
                }
            },
            "/auth/refresh": {
                "post": {
                    "summary": "Exchange a refresh token for new tokens",
                    "requestBody": _json_body(
                        {
                            "type": "object",
                            "required": ["refresh_token"],
                            "properties": {"refresh_token": {"type": "string"}},
                        }
                    ),
                    "responses": {
                        "200": _ok("Session"),
                        "400": _err("malformed request"),
                        "401": _err("refused"),
                        "429": _err("rate limited"),
                    },
                }
            },
            "/auth/logout": {
                "post": {
                    "summary": "End the session of the bearer token",
                    "security": [{"bearer": []}],
                    "responses": {
                        "204": {"description": "ended"},
                        "401": _err("not authenticated"),
                    },
                }
            },
            "/events/{channel}": {
                "get": {
                    "summary": "Events of a channel after a sequence number, in order",
                    "security": [{"bearer": []}],
                    "parameters": [
                        _CHANNEL,
                        {
                            "name": "after",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _ok("EventPage"),
                        "400": _err("bad parameter"),
                        "401": _err("not authenticated"),
                        "403": _err("no access to the channel"),
                    },
                }
            },
            "/events/{channel}/{seq}": {
                "get": {
                    "summary": "One event with its current status",
                    "security": [{"bearer": []}],
                    "parameters": [
                        _CHANNEL,
                        {
                            "name": "seq",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        },
                    ],
                    "responses": {
                        "200": _ok("Event"),
                        "400": _err("bad parameter"),
                        "401": _err("not authenticated"),
                        "403": _err("no access"),
                        "404": _err("no such event"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness, and which ledger and database are in use",
                    "responses": {"200": _ok("Health")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "text format 0.0.4",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
