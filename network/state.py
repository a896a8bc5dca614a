"""What `network up` and `deploy` have set up so far, as kept in ``state.json``.

The file is read at the start of every command and rewritten (atomically) after
each step that changes it, so a command interrupted half-way resumes where it
stopped. The JSON keys are those written since the first native network
(``identities``, ``channel``, ``chaincodes``, ``shape``), so a network brought
up by an earlier version is still found by ``status`` and ``down``; ``added_orgs``
(orgs added with ``network add-org``) is absent from those and read as none.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from network.errors import NetworkError


@dataclasses.dataclass(frozen=True)
class Shape:
    """The ports and the channel the genesis block and the certificates were made with."""

    base_port: int
    channel: str


@dataclasses.dataclass(frozen=True)
class ChaincodeEntry:
    """One deployed chaincode: its package, definition sequence and how its servers run."""

    # Slot of its server ports (see Topology.chaincode_port), stable across upgrades.
    index: int
    package_id: str
    label: str
    sequence: int
    module: str
    pythonpath: str


# The steps of `network add-org`, in order; an added org's entry names the last one done.
ADD_ORG_STEPS = ("started", "identities", "in-channel", "member")


@dataclasses.dataclass
class NetworkState:
    """Mutable on purpose: the steps of `up` and `deploy` record their progress in it."""

    identities: bool = False
    channel: bool = False
    chaincodes: dict[str, ChaincodeEntry] = dataclasses.field(default_factory=dict)
    shape: Shape | None = None
    # Org name -> last step of ADD_ORG_STEPS done, in the order the orgs were added.
    added_orgs: dict[str, str] = dataclasses.field(default_factory=dict)

    def member_orgs(self) -> list[str]:
        """The added orgs whose `add-org` finished: part of every later `up`."""
        return [name for name, step in self.added_orgs.items() if step == ADD_ORG_STEPS[-1]]

    @classmethod
    def load(cls, path: Path) -> NetworkState:
        """The state in ``path``; a missing or unparsable file is a network never set up.

        A file that parses but does not have the expected fields raises
        :class:`NetworkError` naming the file, rather than being taken as empty
        (which would make `up` wipe what it describes).
        """
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        try:
            return cls.from_json(data)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise NetworkError(
                f"{path} is not a network state file ({type(exc).__name__}: {exc}); "
                "run `anchorline network down --purge` to start over"
            ) from None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkState:
        shape = data.get("shape")
        chaincodes = data.get("chaincodes") or {}
        return cls(
            identities=bool(data.get("identities", False)),
            channel=bool(data.get("channel", False)),
            chaincodes={
                str(name): ChaincodeEntry(
                    index=int(e["index"]),
                    package_id=str(e["package_id"]),
                    label=str(e["label"]),
                    sequence=int(e["sequence"]),
                    module=str(e["module"]),
                    pythonpath=str(e["pythonpath"]),
                )
                for name, e in chaincodes.items()
            },
            shape=(
                None
                if shape is None
                else Shape(base_port=int(shape["base_port"]), channel=str(shape["channel"]))
            ),
            added_orgs={str(e["name"]): _step(e["step"]) for e in data.get("added_orgs") or []},
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "identities": self.identities,
            "channel": self.channel,
            "chaincodes": {n: dataclasses.asdict(e) for n, e in self.chaincodes.items()},
        }
        if self.shape is not None:
            data["shape"] = dataclasses.asdict(self.shape)
        if self.added_orgs:
            # A list, not an object: the file's keys are sorted, and the order the orgs
            # were added decides their ports.
            data["added_orgs"] = [{"name": n, "step": s} for n, s in self.added_orgs.items()]
        return data

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def _step(value: object) -> str:
    if value not in ADD_ORG_STEPS:
        raise ValueError(f"unknown add-org step {value!r}")
    return str(value)
