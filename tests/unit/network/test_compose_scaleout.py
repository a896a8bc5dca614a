"""network/docker/compose.yaml's "scaleout" profile against docs/scaleout/ and the README:
the files it names exist, the README's services are there, and the ports and settings are
the documented ones. No Docker engine here: the file is checked statically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "network" / "docker" / "compose.yaml"
DOCS = ROOT / "docs" / "scaleout"


def _scaleout() -> dict[str, Any]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {k: v for k, v in services.items() if "scaleout" in v.get("profiles", [])}


def _from_compose(path: str) -> Path:
    """A host path as Compose resolves it: relative to the Compose file's folder."""
    return (COMPOSE.parent / path).resolve()


def _env_file() -> dict[str, str]:
    lines = (DOCS / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Running several gateways")
    return text[start : text.index("\n## ", start + 1)]


def test_every_file_the_profile_names_exists() -> None:
    named: list[Path] = []
    for service in _scaleout().values():
        if "build" in service:
            context = _from_compose(service["build"]["context"])
            assert context.is_dir(), context
            named.append(context / service["build"]["dockerfile"])
        named += [_from_compose(p) for p in service.get("env_file", [])]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):  # a bind mount, not a named volume
                named.append(_from_compose(source))
    assert named, "the profile names no file"
    missing = [str(p) for p in named if not p.is_file()]
    assert missing == []


def test_the_services_the_readme_and_the_procfile_name_are_there() -> None:
    services = _scaleout()
    procfile = [
        line.split(":", 1)[0]
        for line in (DOCS / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert set(procfile) <= set(services), procfile
    command = re.search(r"docker compose .*--profile scaleout up ([\w ]+)", _readme_section())
    assert command, "the README shows the Compose command"
    assert set(command.group(1).split()) == set(services) == {*procfile, "postgres"}
    for name, service in services.items():
        assert service["network_mode"] == "host", name  # ports as on the host, loopback


def test_ports_and_settings_are_the_documented_ones() -> None:
    services, env = _scaleout(), _env_file()
    procfile = (DOCS / "Procfile").read_text()
    haproxy = (DOCS / "haproxy.cfg").read_text()
    backends = {
        name: int(port) for name, port in re.findall(r"server (\w+) 127\.0\.0\.1:(\d+)", haproxy)
    }
    gateways = {
        name: int(s["environment"]["ANCHORLINE_GATEWAY_PORT"])
        for name, s in services.items()
        if s["command"][:3] == ["anchorline", "gateway", "run"]
    }
    assert gateways == backends == {"gateway1": 8081, "gateway2": 8082}
    assert "gateways on 8081 and 8082" in _readme_section()
    for name, port in gateways.items():
        assert f"{name}: env ANCHORLINE_GATEWAY_PORT={port} " in procfile
        assert services[name]["env_file"] == ["../../docs/scaleout/env"]
    assert "bind 127.0.0.1:8080" in haproxy and "HAProxy on 8080" in _readme_section()
    balancer = services["balancer"]
    assert balancer["volumes"] == [
        "../../docs/scaleout/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"
    ]
    assert balancer["command"][-1] == "/usr/local/etc/haproxy/haproxy.cfg"

    redis = urlsplit(env["ANCHORLINE_GATEWAY_REDIS_URL"])
    command = services["redis"]["command"]
    assert (redis.hostname, redis.port) == ("127.0.0.1", 6379) and "Redis on 6379" in (
        _readme_section()
    )
    assert command[command.index("--bind") + 1] == redis.hostname
    assert int(command[command.index("--port") + 1]) == redis.port

    database = urlsplit(env["ANCHORLINE_GATEWAY_DATABASE_URL"])
    postgres = services["postgres"]
    assert "listen_addresses=127.0.0.1" in postgres["command"]
    assert f"port={database.port}" in postgres["command"]
    assert postgres["environment"] == {
        "POSTGRES_USER": database.username,
        "POSTGRES_PASSWORD": database.password,
        "POSTGRES_DB": database.path.lstrip("/"),
    }
