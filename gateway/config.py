"""Settings: one frozen, typed object built once from a file and the environment.

Nothing else in the project reads the environment. Precedence, lowest first:
defaults, the TOML file (``$ANCHORLINE_CONFIG`` or ``<home>/anchorline.toml``),
then environment variables ``ANCHORLINE_<SECTION>_<FIELD>`` (for example
``ANCHORLINE_GATEWAY_PORT=8443``). Two well-known variables are honoured as
well: ``ANCHORLINE_HOME`` (the state folder) and ``FABRIC_HOME`` (a Fabric
install in the release layout).

Each section is its own dataclass; the package that uses a section owns it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from gateway.errors import ConfigError

LedgerKind = Literal["auto", "fabric", "embedded"]
LogFormat = Literal["plain", "json"]
VerifyOffload = Literal["auto", "process", "off"]


def default_home() -> Path:
    """State lives outside the clone so a fresh checkout never carries ledgers or keys."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "anchorline"


@dataclasses.dataclass(frozen=True)
class NetworkSettings:
    """The native Fabric network (owned by ``network/``)."""

    # Every node port is derived from this base; see network/topology.py.
    base_port: int = 7100
    # The application channel the network creates and the gateway anchors to.
    channel: str = "anchorline"
    # Orderer BatchTimeout in milliseconds: short, so an anchor commits fast.
    batch_timeout_ms: int = 100
    # Raft tick in milliseconds: 100 ms elects a new leader in about a second.
    raft_tick_ms: int = 100
    # The chaincode (anchor, settlement and access contracts) the gateway calls.
    chaincode_name: str = "anchorline"
    # Each peer's Go soft memory limit (GOMEMLIMIT, MiB) and GOGC. Peers are the CPU
    # bottleneck and at 96 MiB their collector runs often under load: 192 MiB gave
    # about 20% more committed submits/s, for about 60 MiB more after 1,000
    # transactions (network/README.md). 96 keeps the network within 700 MiB.
    peer_memory_mib: int = 96
    peer_gogc: int = 100


@dataclasses.dataclass(frozen=True)
class LedgerSettings:
    """Which ledger the gateway and the CLI talk to."""

    # "fabric", "embedded", or "auto": Fabric when an install is found, else embedded.
    kind: LedgerKind = "auto"
    # Client identity used by the gateway for anchoring (an MSP folder).
    msp_dir: str = ""
    # Deadlines of one Fabric Gateway call: endorse, submit, and waiting for the commit.
    endorse_timeout_s: float = 15.0
    submit_timeout_s: float = 15.0
    commit_timeout_s: float = 30.0
    # Embedded ledger: its orgs (comma-separated), and a block closes at this many
    # transactions or after this many milliseconds, whichever comes first.
    embedded_orgs: str = "Org1,Org2,Org3"
    embedded_batch_max_tx: int = 100
    embedded_batch_timeout_ms: int = 20
    # The contracts the embedded ledger deploys under network.chaincode_name.
    embedded_contracts: str = "chaincode.anchorline:CONTRACTS"


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    """The aiohttp + Socket.IO server."""

    # Listen address and port of REST and Socket.IO.
    host: str = "127.0.0.1"
    port: int = 8080
    # Serve HTTPS and WSS with this certificate (PEM, the chain after the leaf) and key
    # (PEM); both empty: plain HTTP, e.g. behind a TLS-terminating proxy.
    # `anchorline gateway tls-cert` issues a pair from the built-in CA.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Peers (comma-separated addresses or CIDRs, e.g. "127.0.0.1/32,10.0.0.0/8") whose
    # X-Forwarded-For header is believed: the client address (login rate limit, logs)
    # is the right-most address in it that is not itself a trusted proxy. Empty: the
    # TCP peer is the client and the header is ignored.
    trusted_proxies: str = ""
    # "plain" lines for a terminal, or "json" (one object per line, with request,
    # connection and session ids) for a log pipeline; see gateway/logs.py.
    log_format: LogFormat = "plain"
    # DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"
    # One anchorline.access record per HTTP request (method, path, status, time, client).
    access_log: bool = True
    # The domain a login challenge is bound to.
    domain: str = "anchorline.local"
    # Event store: sqlite:///file or postgresql://...; empty: <home>/gateway/events.db.
    database_url: str = ""
    # Redis for the fast path between gateway processes; empty: none (one process).
    redis_url: str = ""
    # Lifetime of an access token and of a login challenge, in seconds.
    session_ttl_s: int = 900
    challenge_ttl_s: int = 60
    # Intake limits of an event's five signed fields (docs/security.md): its
    # canonical size, nesting depth, object keys in total, and the length of
    # any string or key. At most the protocol's (16384, 32, 1024, 8192), which
    # every verifier accepts; lower is allowed.
    max_payload_bytes: int = 16384
    json_max_depth: int = 32
    json_max_keys: int = 1024
    json_max_string: int = 8192
    # MSP folders (or CA certificate files) whose CAs the gateway trusts, separated
    # by the OS path separator; empty means the network's and embedded CA's MSPs.
    trust_msp_dirs: str = ""
    # How often the MSP folders' crls/ are checked for a new CRL, in milliseconds; a
    # revoked member's sessions end within about this long (0: only at login/refresh).
    crl_poll_ms: int = 250
    # HMAC key for session tokens (hex); empty means a random key per process, so
    # sessions do not survive a restart.
    token_secret: str = ""
    # Lifetime of a refresh token, in seconds (never past the certificate's end).
    refresh_ttl_s: int = 86400
    # Login attempts allowed per minute, per certificate and per client address.
    rate_limit_identity_per_min: int = 30
    rate_limit_address_per_min: int = 120
    # Channel rules "pattern=role[@msp],...;pattern=...": first matching pattern wins.
    authz_rules: str = "*=member,admin,auditor"
    # Roles that may emit events (the others may only read).
    authz_emit_roles: str = "member,admin"
    # How long an access decision is cached, in seconds (revocation events clear it).
    authz_cache_ttl_s: float = 30.0
    # Emit budgets (token buckets; 0 turns one off): events per second and burst
    # per identity (all its connections and its REST events together) and per connection.
    # A socket whose emit the budget refused is left unread for the retry_after it was
    # told (at most 1 s), so a flood costs the gateway its budget, not every message.
    # The defaults leave one identity an eighth or so of a core's capacity: at 1000/s a
    # flooder moved another member's ack p99 from 1 ms to about 11 (docs/security.md).
    emit_identity_per_s: float = 1000.0
    emit_identity_burst: int = 500
    emit_connection_per_s: float = 1000.0
    emit_connection_burst: int = 500
    # Group commit: at most this many events per transaction.
    commit_max_batch: int = 1024
    # Admission (gateway/events/admission.py): a new event is refused at once with
    # Overloaded (AL1607, retry_after in ms) when this many events wait for a commit,
    commit_queue_limit: int = 20000
    # or the oldest event not yet acknowledged (queued or in the commit in flight)
    # has waited this long (0: off),
    admission_max_queue_wait_ms: int = 40
    # or the event loop runs this late (0: off): the CPU is full and the excess
    # would otherwise wait, unseen, in the sockets. These two latency rules refuse only
    # the identities with at least half their fair share of the recent events.
    admission_max_loop_lag_ms: int = 30
    # or, while one of those two rules trips, this many more messages of the same
    # connection wait, already read from its socket, behind the event (0: off): the
    # gateway is behind that sender, and the refusal, decided before the event is
    # parsed, keeps the excess from waiting. (A burst on an idle gateway is served.)
    admission_max_read_backlog: int = 64
    # The smallest retry_after a refusal suggests; it grows with the backlog.
    admission_retry_after_ms: int = 100
    # Where event signatures are checked (gateway/events/verifier.py): "process", a
    # worker process on another core, the events read in one loop turn in one batch;
    # "off", inline on the event loop; "auto", "process" when this process may run
    # on two CPUs or more.
    verify_offload: VerifyOffload = "auto"
    # A smaller batch, with none in flight, is checked inline: a lone event waits
    # less for its check than for the worker's round trip.
    verify_offload_min_batch: int = 2
    # SQLite synchronous pragma: FULL makes each commit durable on power loss.
    sqlite_synchronous: str = "FULL"
    # A client whose unsent output exceeds this is disconnected (slow consumer,
    # AL1005: a slow_consumer event, then the close; it resumes from its last seq).
    client_buffer_limit_bytes: int = 8 * 1024 * 1024
    # Live events held for a client while its catch-up is sent, beyond which it is
    # disconnected the same way.
    client_buffer_limit_packets: int = 20000
    # How long a disconnected slow consumer may still read what was buffered for it
    # (its slow_consumer notice last) before its socket is cut.
    slow_consumer_grace_ms: int = 1000
    # Stored events sent per page when a client catches up on join.
    catchup_page: int = 1000
    # Run Alembic migrations to head when the gateway starts.
    migrate_on_start: bool = True
    # Run on uvloop's event loop when it is installed.
    use_uvloop: bool = True
    # Engine.IO heartbeat; a long-polling request is held at most their sum.
    ping_interval_s: int = 25
    ping_timeout_s: int = 20
    # SIGTERM: how long to wait for open connections once clients were told to go.
    shutdown_timeout_s: float = 5.0
    # How committed events and statuses reach the subscribers: "local" writes to
    # this process's connections (see gateway/stream/fanout.py); "redis": several
    # gateway processes on one PostgreSQL, through Redis at redis_url
    # (gateway/stream/redis_fanout.py).
    fanout: str = "local"


@dataclasses.dataclass(frozen=True)
class AnchoringSettings:
    """Batching and anchoring (the trust path)."""

    # A batch closes at this many events or after this many milliseconds.
    batch_max_events: int = 1000
    batch_max_ms: int = 200
    # Events waiting to be anchored beyond which new ones are refused.
    backlog_limit_events: int = 1_000_000
    # Run batching and anchoring in the gateway process (off: the fast path only).
    enabled: bool = True
    # The org of the gateway's anchoring identity (its MSP folder is ledger.msp_dir; on
    # the embedded ledger an empty msp_dir means an identity issued by the built-in CA).
    gateway_org: str = "Org1"
    # The org whose peer reads an anchored root back before it counts as finalized;
    # empty: the first org other than gateway_org.
    reader_org: str = ""
    # Network profile of the Fabric network (empty: <home>/network/profile.json).
    profile: str = ""
    # Retries of unavailable or timed-out ledger calls: exponential backoff with jitter.
    retry_initial_ms: int = 100
    retry_max_ms: int = 5000
    # The C2SP checkpoint origin prefix; the channel name is appended ("<prefix>/<channel>").
    checkpoint_origin: str = "anchorline.local"
    # Several gateways on one PostgreSQL: one anchors, by a lease renewed every
    # lease_renew_ms that runs out lease_ttl_ms after its last renewal; the others
    # try to take it every lease_retry_ms. A dead holder is replaced within
    # lease_ttl_ms + lease_retry_ms.
    lease_ttl_ms: int = 3000
    lease_renew_ms: int = 1000
    lease_retry_ms: int = 500


@dataclasses.dataclass(frozen=True)
class Pkcs11Settings:
    """A PKCS#11 token holding signing keys (``gateway.identity.pkcs11``).

    The PIN comes from ``ANCHORLINE_PKCS11_PIN`` or from ``pin_file`` (its first
    line); never from the TOML file (refused there) nor from a command line.
    """

    # The PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so; empty: no token.
    module: str = ""
    # The label of the token that holds the keys (softhsm2-util --show-slots lists them).
    token_label: str = ""
    # A file whose first line is the user PIN (mode 0600).
    pin_file: str = ""
    # The user PIN, from ANCHORLINE_PKCS11_PIN only: a non-empty value here is refused.
    pin: str = dataclasses.field(default="", repr=False)
    # The label of the gateway's own key pair (its certificate is in ledger.msp_dir).
    key_label: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.module and self.token_label)


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    fabric_home: Path | None
    network: NetworkSettings = dataclasses.field(default_factory=NetworkSettings)
    ledger: LedgerSettings = dataclasses.field(default_factory=LedgerSettings)
    gateway: GatewaySettings = dataclasses.field(default_factory=GatewaySettings)
    anchoring: AnchoringSettings = dataclasses.field(default_factory=AnchoringSettings)
    pkcs11: Pkcs11Settings = dataclasses.field(default_factory=Pkcs11Settings)
    # Where to look for programs (Fabric's binaries, docker): the environment's PATH.
    search_path: str = os.defpath

    @property
    def network_dir(self) -> Path:
        """Where the native network keeps crypto, ledgers, logs and pid files."""
        return self.home / "network"

    @property
    def embedded_dir(self) -> Path:
        """Where the embedded ledger keeps its blocks, state and CA."""
        return self.home / "embedded"


#: The file's sections and the dataclass of each, in the order the sample file shows them.
SECTIONS: dict[str, type[Any]] = {
    "network": NetworkSettings,
    "ledger": LedgerSettings,
    "gateway": GatewaySettings,
    "anchoring": AnchoringSettings,
    "pkcs11": Pkcs11Settings,
}

# Secrets that only the environment may give (a config file is often world-readable).
_ENV_ONLY = {"pkcs11": ("pin",)}


def _convert(raw: Any, target: Any, where: str) -> Any:
    origin = typing.get_origin(target)
    if origin is Literal:
        if raw not in typing.get_args(target):
            choices = ", ".join(map(str, typing.get_args(target)))
            raise ConfigError(f"{where}: {raw!r} is not one of {choices}")
        return raw
    if origin in (typing.Union, types.UnionType):
        # Only `X | None` is used in settings.
        inner = next(a for a in typing.get_args(target) if a is not type(None))
        return None if raw in ("", None) else _convert(raw, inner, where)
    try:
        if target is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if target in (int, float, str):
            return target(raw)
        if target is Path:
            return Path(raw).expanduser()
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {raw!r} is not a valid {target.__name__}") from None
    raise ConfigError(f"{where}: unsupported setting type {target!r}")


def _build_section(
    cls: type[Any], name: str, table: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - known
    for secret in _ENV_ONLY.get(name, ()):
        # An empty value (as in the generated sample) gives nothing away.
        if table.get(secret):
            raise ConfigError(
                f"[{name}].{secret} may not be set in the config file: use "
                f"ANCHORLINE_{name.upper()}_{secret.upper()} or [{name}].{secret}_file"
            )
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    for field in dataclasses.fields(cls):
        env_key = f"ANCHORLINE_{name.upper()}_{field.name.upper()}"
        if env_key in env:
            values[field.name] = _convert(env[env_key], hints[field.name], env_key)
        elif field.name in table:
            values[field.name] = _convert(
                table[field.name], hints[field.name], f"[{name}].{field.name}"
            )
    return cls(**values)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (default: the process environment) and the file."""
    env = os.environ if env is None else env
    home = (
        Path(env["ANCHORLINE_HOME"]).expanduser() if env.get("ANCHORLINE_HOME") else default_home()
    )
    config_file = Path(env.get("ANCHORLINE_CONFIG", str(home / "anchorline.toml")))
    data: dict[str, Any] = {}
    if config_file.is_file():
        try:
            data = tomllib.loads(config_file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid TOML ({exc})") from None
    elif "ANCHORLINE_CONFIG" in env:
        raise ConfigError(f"ANCHORLINE_CONFIG points at {config_file}, which does not exist")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{config_file}: unknown section(s) {', '.join(sorted(unknown))}")
    fabric_home = env.get("FABRIC_HOME") or None
    sections = {
        name: _build_section(cls, name, data.get(name, {}), env) for name, cls in SECTIONS.items()
    }
    return Settings(
        home=home,
        fabric_home=Path(fabric_home).expanduser() if fabric_home else None,
        search_path=env.get("PATH", os.defpath),
        **sections,
    )
