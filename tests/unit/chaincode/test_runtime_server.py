"""Defect (c): TLS from the environment; the ``python -m chaincode.runtime`` entry point."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from fabric_protos.peer import proposal_response_pb2

from chaincode.runtime.server import (
    ServerConfigError,
    config_from_env,
    start_server,
    tls_from_env,
)
from tests.unit.chaincode.ccfakes import T0, issue, make_ca
from tests.unit.chaincode.ccpeer import GrpcPeer
from tests.unit.chaincode.ccsample import CONTRACTS

HERE = Path(__file__).parent
ROOT = HERE.parents[2]


def _pem_key(identity):
    return identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    server_ca, client_ca = make_ca("tlsca"), make_ca("peerca")
    server = issue(server_ca, "Org1MSP", "cc.org1", role=None, san_hosts=("localhost", "127.0.0.1"))
    client = issue(client_ca, "Org1MSP", "peer0.org1", role=None)
    files = {
        "key": _pem_key(server),
        "cert": server.cert_pem,
        "client_ca": client_ca.cert.public_bytes(serialization.Encoding.PEM),
        "server_ca": server_ca.cert.public_bytes(serialization.Encoding.PEM),
        "client_key": _pem_key(client),
        "client_cert": client.cert_pem,
    }
    for name, data in files.items():
        (d / f"{name}.pem").write_bytes(data)
    return d, files


def _tls_env(d, mutual=True):
    env = {
        "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
        "CHAINCODE_ID": "anchorline:abcd",
        "CHAINCODE_TLS_DISABLED": "false",
        "CHAINCODE_TLS_KEY": str(d / "key.pem"),
        "CHAINCODE_TLS_CERT": str(d / "cert.pem"),
    }
    if mutual:
        env["CHAINCODE_CLIENT_CA_CERT"] = str(d / "client_ca.pem")
    return env


def test_tls_is_off_by_default_and_when_disabled():
    assert tls_from_env({}) is None
    assert tls_from_env({"CHAINCODE_TLS_DISABLED": "TRUE"}) is None


def test_tls_material_is_read_from_the_named_files(pki):
    d, files = pki
    tls = tls_from_env(_tls_env(d))
    assert (tls.key, tls.cert, tls.client_ca) == (files["key"], files["cert"], files["client_ca"])
    assert tls_from_env(_tls_env(d, mutual=False)).client_ca is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAINCODE_TLS_DISABLED": "maybe"}, "CHAINCODE_TLS_DISABLED must be true or false"),
        ({"CHAINCODE_TLS_DISABLED": "false"}, "CHAINCODE_TLS_KEY must name a PEM file"),
        (
            {"CHAINCODE_TLS_DISABLED": "false", "CHAINCODE_TLS_KEY": "/nonexistent/k.pem"},
            "CHAINCODE_TLS_KEY=/nonexistent/k.pem cannot be read",
        ),
    ],
)
def test_bad_tls_settings_say_what_to_fix(env, message):
    with pytest.raises(ServerConfigError, match=message):
        tls_from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAINCODE_ID": "x"}, "CHAINCODE_SERVER_ADDRESS must be host:port"),
        ({"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:1"}, "CHAINCODE_ID must be"),
    ],
)
def test_missing_address_or_id_is_refused(env, message):
    with pytest.raises(ServerConfigError, match=message):
        config_from_env(env)


async def test_mutual_tls_server_accepts_a_peer_with_a_client_certificate(pki):
    d, files = pki
    server, port = await start_server(CONTRACTS, config_from_env(_tls_env(d)))
    alice = issue(make_ca("Org1"), "Org1MSP", "alice")
    try:
        creds = grpc.ssl_channel_credentials(
            root_certificates=files["server_ca"],
            private_key=files["client_key"],
            certificate_chain=files["client_cert"],
        )
        async with GrpcPeer(f"127.0.0.1:{port}", creds) as peer:
            msg = await asyncio.wait_for(peer.invoke("kv:Put", ["t", "1"], alice.creator, T0), 5)
            assert proposal_response_pb2.Response.FromString(msg.payload).status == 200
        # Without a client certificate the handshake is refused.
        anonymous = grpc.ssl_channel_credentials(root_certificates=files["server_ca"])
        with pytest.raises(grpc.aio.AioRpcError):
            async with GrpcPeer(f"127.0.0.1:{port}", anonymous):
                pass
        # A plaintext peer cannot talk to a TLS server either.
        with pytest.raises(grpc.aio.AioRpcError):
            async with GrpcPeer(f"127.0.0.1:{port}"):
                pass
    finally:
        await server.stop(0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_module(args, env_extra, **kw):
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        **env_extra,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "chaincode.runtime", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


async def test_the_entry_point_serves_the_module_and_stops_on_sigterm():
    port = _free_port()
    proc = _run_module(
        ["ccsample"],
        {"CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{port}", "CHAINCODE_ID": "anchorline:ff"},
    )
    alice = issue(make_ca("Org1"), "Org1MSP", "alice")
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                async with GrpcPeer(f"127.0.0.1:{port}") as peer:
                    msg = await asyncio.wait_for(
                        peer.invoke("kv:Put", ["m", "hush"], alice.creator, T0), 5
                    )
                    break
            except (grpc.aio.AioRpcError, TimeoutError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "chaincode server did not answer"
                await asyncio.sleep(0.2)
        assert msg.chaincode_event.event_name == "Stored"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "serving kv:Fail, kv:Get, kv:Keys, kv:Put on 127.0.0.1" in err
    assert "hush" not in err
    assert " DEBUG " not in err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "usage: python -m chaincode.runtime"),
        (["no_such_module_x"], {}, "cannot import no_such_module_x"),
        (["ccfakes"], {}, "ccfakes must define a non-empty CONTRACTS list"),
        (["ccsample"], {"CHAINCODE_ID": "x"}, "CHAINCODE_SERVER_ADDRESS must be host:port"),
    ],
)
def test_the_entry_point_refuses_bad_configuration_in_one_line(args, env, message):
    base = {"CHAINCODE_SERVER_ADDRESS": "", "CHAINCODE_ID": ""}
    proc = _run_module(args, {**base, **env})
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
