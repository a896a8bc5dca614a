"""Errors of the native Fabric network (code range AL11xx).

Each message says what went wrong and what to do; the CLI prints it as one line.
"""

from __future__ import annotations

from gateway.errors import AnchorlineError


class NetworkError(AnchorlineError):
    """Something about the native network failed."""

    code = "AL1100"
    http_status = 503


class FabricNotFound(NetworkError):
    """No usable Fabric install (FABRIC_HOME, PATH, /opt/fabric)."""

    code = "AL1101"


class PortInUse(NetworkError):
    """A port the topology needs is already taken by another process."""

    code = "AL1102"


class NodeFailed(NetworkError):
    """A node exited or did not become ready in time."""

    code = "AL1103"


class NotRunning(NetworkError):
    """The command needs a running network and there is none."""

    code = "AL1104"


class UnknownOrg(NetworkError):
    """The organisation named is not part of the topology."""

    code = "AL1105"
    http_status = 400


class IdentityExists(NetworkError):
    """An identity with that name is already registered with the org's CA."""

    code = "AL1106"
    http_status = 409


class CAError(NetworkError):
    """A Fabric CA operation failed."""

    code = "AL1107"


class ChaincodeError(NetworkError):
    """A chaincode could not be packaged, deployed or started."""

    code = "AL1108"


class ChannelError(NetworkError):
    """The channel could not be created or joined."""

    code = "AL1109"


class CommandFailed(NetworkError):
    """A Fabric binary exited with an error."""

    code = "AL1110"


class EmbeddedCAUnavailable(NetworkError):
    """The embedded ledger's built-in CA is not available in this build."""

    code = "AL1111"


class UnknownIdentity(NetworkError):
    """The identity named is not registered with the org's CA."""

    code = "AL1112"
    http_status = 404


class OrgExists(NetworkError):
    """``add-org`` was given an org that is already part of the network."""

    code = "AL1114"
    http_status = 409
