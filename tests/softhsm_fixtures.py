"""A throwaway SoftHSM2 token per test session (Debian's ``softhsm2``).

- ``softhsm`` (session): a :class:`SoftHsm` whose token lives under the
  session's temporary folder, with its own ``SOFTHSM2_CONF`` (set in the
  process environment for the session, because the SoftHSM2 library reads it
  when it is first initialised, and restored afterwards). Skipped with the
  reason when the library or ``softhsm2-util`` is missing (``scripts/setup``
  installs them).
- ``pkcs11_settings``: the :class:`gateway.config.Pkcs11Settings` of that
  token, the PIN in a file (never in the environment nor on a command line).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import Pkcs11Settings

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "anchorline-test"
USER_PIN = "4711-test"
SO_PIN = "so-0815-test"


@dataclasses.dataclass(frozen=True)
class SoftHsm:
    module: Path
    token_label: str
    pin_file: Path
    conf: Path
    token_dir: Path

    def settings(self, key_label: str = "") -> Pkcs11Settings:
        return Pkcs11Settings(
            module=str(self.module),
            token_label=self.token_label,
            pin_file=str(self.pin_file),
            key_label=key_label,
        )


def softhsm_or_reason() -> str | None:
    if not SOFTHSM_MODULE.is_file():
        return f"SoftHSM2 is not installed ({SOFTHSM_MODULE} missing; scripts/setup installs it)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is not on PATH (apt-get install softhsm2)"
    return None


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    reason = softhsm_or_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pin_file = root / "user.pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o600)
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            USER_PIN,
            "--so-pin",
            SO_PIN,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        yield SoftHsm(SOFTHSM_MODULE, TOKEN_LABEL, pin_file, conf, tokens)
        import pkcs11

        pkcs11.unload(str(SOFTHSM_MODULE))


@pytest.fixture
def pkcs11_settings(softhsm: SoftHsm) -> Pkcs11Settings:
    return softhsm.settings()
