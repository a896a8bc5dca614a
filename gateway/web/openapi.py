"""The OpenAPI 3.1 document of the REST surface (served at ``/openapi.json``).

Every route the gateway app registers is described here, except the Socket.IO
transport (``/socket.io/``, its protocol is in :mod:`gateway.stream.hub`) and
the page's static files (``/static/``); ``tests/unit/web/test_openapi_routes.py``
fails when a route is missing. The REST fuzz (``tests/unit/web/test_openapi_fuzz.py``)
runs against this document.
"""

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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_CHANNEL = {
    "name": "channel",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
}
_SEQ = {
    "name": "seq",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_AUCTION_ID = {
    "name": "auction_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
}
_TX_ID = {
    "name": "tx_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_SIGNATURE_BODY = {
    "type": "object",
    "required": ["signature"],
    "properties": {
        "signature": {
            "type": "string",
            "description": "base64 DER ECDSA-SHA256 (low-S) over the digest the previous "
            "step returned, made with the member's own key",
        }
    },
}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}

_MARKET_SCHEMAS: dict[str, Any] = {
    "Party": {
        "type": "object",
        "required": ["msp_id", "fingerprint"],
        "properties": {
            "msp_id": {"type": "string"},
            "fingerprint": {"type": "string", "description": "SHA-256 of the certificate, hex"},
        },
    },
    "SignedEvent": {
        "type": "object",
        "description": "An event signed by the sender: {id, channel, type, payload, client_ts} "
        "and the base64 DER ECDSA-SHA256 signature over their RFC 8785 canonical JSON.",
        "required": ["id", "channel", "type", "payload", "client_ts", "signature"],
        "properties": {
            "id": {"type": "string"},
            "channel": {"type": "string"},
            "type": {"type": "string"},
            "payload": {},
            "client_ts": {"type": "integer"},
            "signature": {"type": "string"},
        },
    },
    "Bid": {
        "type": "object",
        "required": ["seq", "id", "bidder", "amount", "received_at", "valid", "reason"],
        "properties": {
            "seq": {"type": "integer"},
            "id": {"type": "string"},
            "bidder": _ref("Party"),
            "amount": {"type": "integer", "description": "minor units"},
            "received_at": {"type": "integer", "description": "Unix ms"},
            "valid": {"type": "boolean"},
            "reason": {"type": "string", "description": "why the bid does not count, or ''"},
        },
    },
    "Auction": {
        "type": "object",
        "required": [
            "auction_id",
            "item",
            "reserve",
            "closes_at",
            "premium",
            "channel",
            "seller",
            "open_seq",
            "state",
            "closed_at",
            "bids",
            "best",
            "winner",
            "settlement",
        ],
        "properties": {
            "auction_id": {"type": "string"},
            "item": {"type": "string"},
            "reserve": {"type": "integer"},
            "closes_at": {"type": "integer", "description": "deadline, Unix ms"},
            "premium": {"type": "boolean"},
            "channel": {"type": "string"},
            "seller": _ref("Party"),
            "open_seq": {"type": "integer"},
            "state": {"type": "string", "enum": ["open", "closed"]},
            "closed_at": {**_NULLABLE_INT, "description": "the deadline once closed"},
            "bids": {"type": "integer"},
            "best": {"oneOf": [_ref("Bid"), {"type": "null"}]},
            "winner": {"oneOf": [_ref("Bid"), {"type": "null"}]},
            "settlement": {
                "type": "object",
                "description": "empty until the first settlement step; then the last "
                "SettlementStep and its history",
            },
            "bid_list": {
                "type": "array",
                "items": _ref("Bid"),
                "description": "GET /marketplace/auctions/{auction_id} only",
            },
        },
    },
    "AuctionList": {
        "type": "object",
        "required": ["auctions"],
        "properties": {"auctions": {"type": "array", "items": _ref("Auction")}},
    },
    "SettlementStep": {
        "type": "object",
        "required": ["settlement_id", "state", "tx_id", "block_number", "by"],
        "properties": {
            "settlement_id": {"type": "string"},
            "state": {"type": "string", "enum": ["Proposed", "Accepted", "Settled"]},
            "tx_id": {"type": "string"},
            "block_number": {"type": "integer"},
            "by": _ref("Party"),
            "seq": {
                "type": "integer",
                "description": "seq of the settlement.status event published for this step "
                "on the auction's channel (absent until it is stored)",
            },
        },
    },
    "Settlement": {
        "type": "object",
        "required": [
            "settlement_id",
            "auction_id",
            "channel",
            "asset",
            "amount",
            "winning_seq",
            "buyer",
            "seller",
            "state",
            "tx_id",
            "block_number",
            "updated_at",
            "history",
        ],
        "properties": {
            "settlement_id": {
                "type": "string",
                "description": "the settlement chaincode's id: auction-<auction_id>",
            },
            "auction_id": {"type": "string"},
            "channel": {"type": "string"},
            "asset": {"type": "string", "description": "the auction's item"},
            "amount": {"type": "integer", "description": "the winning bid, minor units"},
            "winning_seq": {"type": "integer", "description": "seq of the winning bid event"},
            "buyer": _ref("Party"),
            "seller": _ref("Party"),
            "state": {
                "type": "string",
                "enum": ["Awaiting", "Proposed", "Accepted", "Settled"],
                "description": "Awaiting: closed with a winner, no settlement transaction yet",
            },
            "tx_id": {**_NULLABLE_STR, "description": "the last step's transaction"},
            "block_number": {**_NULLABLE_INT, "description": "the last step's block"},
            "updated_at": {"type": "integer", "description": "Unix ms of the last change"},
            "history": {"type": "array", "items": _ref("SettlementStep")},
        },
    },
    "SettlementPage": {
        "type": "object",
        "required": ["settlements", "next_after"],
        "properties": {
            "settlements": {"type": "array", "items": _ref("Settlement")},
            "next_after": {
                **_NULLABLE_STR,
                "description": "pass as ?after= for the next page; null after the last page",
            },
        },
    },
    "PreparedTransaction": {
        "type": "object",
        "required": ["tx_id", "stage", "function", "args", "bytes", "digest"],
        "properties": {
            "tx_id": {"type": "string"},
            "stage": {"type": "string", "enum": ["proposal", "transaction"]},
            "function": {"type": "string"},
            "args": {"type": "array", "items": {"type": "string"}},
            "channel": {"type": "string"},
            "chaincode": {"type": "string"},
            "bytes": {"type": "string", "description": "base64 protobuf to check before signing"},
            "digest": {"type": "string", "description": "hex SHA-256 to sign"},
            "result": {"description": "the endorsed result (transaction stage)"},
        },
    },
    "LedgerOutcome": {
        "type": "object",
        "required": ["tx_id", "block_number", "valid"],
        "properties": {
            "tx_id": {"type": "string"},
            "block_number": {"type": "integer"},
            "valid": {"type": "boolean"},
            "result": {},
        },
    },
    "MarketInfo": {
        "type": "object",
        "required": ["ledger", "fabric_channel", "chaincode", "gateway_msp", "settlement"],
        "properties": {
            "ledger": {"type": "string"},
            "fabric_channel": _NULLABLE_STR,
            "chaincode": _NULLABLE_STR,
            "gateway_msp": _NULLABLE_STR,
            "settlement": {"type": "boolean"},
        },
    },
    "EventProof": {
        "type": "object",
        "description": "anchorline.event-proof/1: the event, its batch record, the inclusion "
        "proof and the anchor; verify it with `anchorline verify` (docs/proofs.md)",
    },
    "Consistency": {
        "type": "object",
        "required": ["channel", "origin", "from", "to", "root1", "root2", "proof"],
        "properties": {
            "channel": {"type": "string"},
            "origin": {"type": "string"},
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "root1": {"type": "string"},
            "root2": {"type": "string"},
            "proof": {"type": "array", "items": {"type": "string"}},
        },
    },
    "AnchoringStatus": {
        "type": "object",
        "description": "backlog, per-channel progress and errors of the trust path",
    },
}


def _market_paths() -> dict[str, Any]:
    unauth = _err("not authenticated")
    no_market = _err("the marketplace or its ledger is not running (AL1910)")
    return {
        "/": {
            "get": {
                "summary": "The web page (live board, auditor view)",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "404": {"description": "the page is not installed"},
                },
            }
        },
        "/marketplace/info": {
            "get": {
                "summary": "Which ledger the marketplace settles on",
                "responses": {"200": _ok("MarketInfo"), "503": no_market},
            }
        },
        "/marketplace/auctions": {
            "post": {
                "summary": "Open an auction with the seller's signed auction.open event",
                "description": "payload {auction_id, item, reserve?, closes_at (Unix ms, at "
                "most 7 days ahead), premium?} on channel auction-<id> (premium-<id>).",
                "security": _BEARER,
                "requestBody": _json_body(_ref("SignedEvent")),
                "responses": {
                    "201": _ok("Auction", "opened"),
                    "400": _err("malformed event or terms (AL1601, AL1903)"),
                    "401": unauth,
                    "403": _err("may not emit to the auction's channel (AL1511)"),
                    "429": _err(
                        "the seller's emit budget is used up (AL1610, shared with its "
                        "Socket.IO emits): details.retry_after in ms, Retry-After in s"
                    ),
                    "503": _err(
                        "the marketplace or its ledger is not running (AL1910), or the "
                        "gateway is overloaded (AL1607: details.retry_after in ms, "
                        "Retry-After in s)"
                    ),
                },
            },
            "get": {
                "summary": "Every auction this gateway runs, open and closed",
                "security": _BEARER,
                "responses": {"200": _ok("AuctionList"), "401": unauth, "503": no_market},
            },
        },
        "/marketplace/auctions/{auction_id}": {
            "get": {
                "summary": "One auction with its bids (bid_list)",
                "security": _BEARER,
                "parameters": [_AUCTION_ID],
                "responses": {
                    "200": _ok("Auction"),
                    "401": unauth,
                    "404": _err("no such auction (AL1901)"),
                    "503": no_market,
                },
            }
        },
        "/marketplace/auctions/{auction_id}/settlement": {
            "post": {
                "summary": "Prepare a settlement transaction for the caller to sign",
                "security": _BEARER,
                "parameters": [_AUCTION_ID],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["action"],
                        "properties": {
                            "action": {"type": "string", "enum": ["propose", "accept", "settle"]},
                            "any_party": {"type": "boolean"},
                        },
                    }
                ),
                "responses": {
                    "200": _ok("PreparedTransaction"),
                    "400": _err("malformed request, or the auction is still open"),
                    "401": unauth,
                    "403": _err("not the seller or the winning bidder (AL1905)"),
                    "404": _err("no such auction (AL1901)"),
                    "409": _err("no winner (AL1906), or the winning bid not finalized (AL1907)"),
                    "503": no_market,
                },
            }
        },
        "/marketplace/settlements": {
            "get": {
                "summary": "Settlements of auctions closed with a winner, by auction id",
                "description": "Read from the gateway's database, so every gateway process "
                "answers the same. Only auctions whose channel the caller may read are "
                "listed, so a page may hold fewer than `limit`: follow `next_after` until "
                "it is null.",
                "security": _BEARER,
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["Awaiting", "Proposed", "Accepted", "Settled"],
                        },
                    },
                    {
                        "name": "party",
                        "in": "query",
                        "description": "me: only settlements the caller is buyer or seller of",
                        "schema": {"type": "string", "enum": ["me", "any"]},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "description": "the previous page's next_after (an auction id)",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 40},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
                "responses": {
                    "200": _ok("SettlementPage"),
                    "400": _err("a parameter out of range (AL1913)"),
                    "401": unauth,
                    "503": _err("the database or the marketplace is unavailable"),
                },
            }
        },
        "/ledger/prepare": {
            "post": {
                "summary": "Prepare an offered settlement or access function for the caller",
                "security": _BEARER,
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["function"],
                        "properties": {
                            "function": {"type": "string", "description": "contract:Function"},
                            "args": {
                                "type": "array",
                                "maxItems": 8,
                                "items": {"type": "string"},
                            },
                        },
                    }
                ),
                "responses": {
                    "200": _ok("PreparedTransaction"),
                    "400": _err("malformed request"),
                    "401": unauth,
                    "403": _err("function not offered (AL1909)"),
                    "503": no_market,
                },
            }
        },
        "/ledger/transactions/{tx_id}/endorse": {
            "post": {
                "summary": "Send the signature over the proposal digest; the transaction to sign",
                "security": _BEARER,
                "parameters": [_TX_ID],
                "requestBody": _json_body(_SIGNATURE_BODY),
                "responses": {
                    "200": _ok("PreparedTransaction"),
                    "400": _err("malformed signature"),
                    "401": unauth,
                    "404": _err("no such prepared transaction for this session (AL1908)"),
                    "503": no_market,
                },
            }
        },
        "/ledger/transactions/{tx_id}/submit": {
            "post": {
                "summary": "Send the signature over the transaction digest; wait for the commit",
                "security": _BEARER,
                "parameters": [_TX_ID],
                "requestBody": _json_body(_SIGNATURE_BODY),
                "responses": {
                    "200": _ok("LedgerOutcome"),
                    "400": _err("malformed signature"),
                    "401": unauth,
                    "404": _err("no such prepared transaction for this session (AL1908)"),
                    "503": no_market,
                },
            }
        },
    }


def _trust_paths() -> dict[str, Any]:
    unauth = _err("not authenticated")
    off = _err("the trust path is off on this gateway (AL1707)")
    return {
        "/events/{channel}/{seq}/proof": {
            "get": {
                "summary": "The event's proof (anchorline.event-proof/1)",
                "security": _BEARER,
                "parameters": [_CHANNEL, _SEQ],
                "responses": {
                    "200": _ok("EventProof"),
                    "400": _err("bad parameter"),
                    "401": unauth,
                    "403": _err("no access to the channel"),
                    "404": _err("no such event, or not batched yet"),
                    "503": off,
                },
            }
        },
        "/channels/{channel}/checkpoint": {
            "get": {
                "summary": "The channel log's signed checkpoint (C2SP signed note)",
                "security": _BEARER,
                "parameters": [
                    _CHANNEL,
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["json"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "text/plain note; with format=json, an object that "
                        "also carries the verifier key",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    "400": _err("bad parameter"),
                    "401": unauth,
                    "403": _err("no access to the channel"),
                    "404": _err("nothing anchored on the channel yet"),
                    "503": off,
                },
            }
        },
        "/channels/{channel}/consistency": {
            "get": {
                "summary": "RFC 9162 consistency proof between two sizes of the channel log",
                "security": _BEARER,
                "parameters": [
                    _CHANNEL,
                    {
                        "name": "from",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "to",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": {
                    "200": _ok("Consistency"),
                    "400": _err("bad sizes"),
                    "401": unauth,
                    "403": _err("no access to the channel"),
                    "503": off,
                },
            }
        },
        "/anchoring/status": {
            "get": {
                "summary": "The trust path's backlog and per-channel progress",
                "responses": {"200": _ok("AnchoringStatus"), "503": off},
            }
        },
        "/anchoring/metrics": {
            "get": {
                "summary": "The trust path's Prometheus metrics",
                "responses": {"200": _text("text format 0.0.4"), "503": off},
            }
        },
        "/gateway/keys": {
            "get": {
                "summary": "The gateway's key history (anchorline.gateway-keys/1, "
                "docs/proof-format.md): every signing key, when it was retired and the "
                "batch height and log size it had reached per channel",
                "responses": {"200": {"description": "the key history (JSON)"}, "503": off},
            }
        },
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
                **_MARKET_SCHEMAS,
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
            **_trust_paths(),
            **_market_paths(),
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
