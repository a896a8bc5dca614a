"""The token from the command line: doctor, enrolment with a token key, one-line errors,
and the PIN never taken from a command line or the config file."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.identity.msp import load_msp
from tests.softhsm_fixtures import SoftHsm

pytestmark = pytest.mark.softhsm


@pytest.fixture
def env(tmp_path: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("ANCHORLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANCHORLINE_HOME", str(tmp_path))
    monkeypatch.setenv("ANCHORLINE_LEDGER_KIND", "embedded")
    monkeypatch.setenv("ANCHORLINE_PKCS11_MODULE", str(softhsm.module))
    monkeypatch.setenv("ANCHORLINE_PKCS11_TOKEN_LABEL", softhsm.token_label)
    monkeypatch.setenv("ANCHORLINE_PKCS11_PIN_FILE", str(softhsm.pin_file))
    return tmp_path


def _label() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def test_enrol_with_a_generated_token_key(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = _label()
    args = ["network", "enroll", "--org", "Org1", "--name", "carol", "--role", "member"]
    assert main([*args, "--pkcs11-key", label, "--generate-key"]) == 0
    out = capsys.readouterr().out
    assert "embedded CA" in out and label in out
    msp = env / "embedded" / "ca" / "Org1" / "users" / "carol" / "msp"
    assert load_msp(msp, "Org1MSP").private_key is None
    assert not (msp / "keystore").exists()


def test_doctor_reports_the_token_and_the_gateway_key(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    label = _label()
    assert main(["keys", "generate", "--label", label]) == 0
    monkeypatch.setenv("ANCHORLINE_PKCS11_KEY_LABEL", label)
    capsys.readouterr()
    main(["doctor"])
    out = capsys.readouterr().out
    section = out[out.index("PKCS#11") :]
    assert "SoftHSM" in section and "anchorline-test" in section
    assert f"'{label}': P-256, non-extractable" in section


def test_doctor_shows_a_token_failure_with_its_code(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANCHORLINE_PKCS11_PIN", "wrong-pin")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAILED (AL1233)" in out and "- AL1233: the PIN of token" in out


@pytest.mark.parametrize(
    ("variable", "value", "code"),
    [
        ("ANCHORLINE_PKCS11_PIN", "wrong-pin", "AL1233"),
        ("ANCHORLINE_PKCS11_TOKEN_LABEL", "absent-token", "AL1232"),
        ("ANCHORLINE_PKCS11_MODULE", "/nonexistent/libpkcs11.so", "AL1231"),
    ],
)
def test_token_errors_are_one_line_with_a_code(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    code: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["keys", "generate", "--label", _label()]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error {code}: ") and err.count("\n") == 1, err


def test_a_missing_key_label_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["network", "enroll", "--org", "Org1", "--name", "dave", "--role", "member"]
    assert main([*args, "--pkcs11-key", "no-such-key"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error AL1234: ") and err.count("\n") == 1, err


def test_no_pin_on_the_command_line_nor_in_the_config_file(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["keys", "generate", "--label", "x", "--pin", "1234"])
    assert info.value.code == 2
    config = env / "anchorline.toml"
    config.write_text('[pkcs11]\npin = "1234"\n')
    with pytest.raises(ConfigError, match="may not be set in the config file"):
        load_settings({"ANCHORLINE_HOME": str(env)})
    config.write_text(f'[pkcs11]\npin_file = "{env / "pin"}"\n')
    assert load_settings({"ANCHORLINE_HOME": str(env)}).pkcs11.pin_file == str(env / "pin")
    from_env = load_settings({"ANCHORLINE_HOME": str(env), "ANCHORLINE_PKCS11_PIN": "1234"})
    assert from_env.pkcs11.pin == "1234" and "1234" not in repr(from_env)
