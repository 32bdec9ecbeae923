"""TLS file paths (``?ca=``, ``?cert=``, ``?key=``, the service's ``tls_*`` settings) are
checked before OpenSSL opens them: a FIFO blocked every tool for ever, deaf to SIGINT and
SIGTERM (the wait is inside OpenSSL's C code), and a device was read without end."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from spikestream.errors import ConfigError
from spikestream_client.transport.tls import TLS_FILE_MAX_BYTES, tls_context
from spikestream_client.transport.urls import TlsOptions
from tests.brokers import make_test_pki
from tests.clients.conftest import run_cli


def _context_within(options: TlsOptions, fifo: Path | None, seconds: float) -> BaseException:
    """What ``tls_context(options)`` raised, failing the test if it blocked for
    ``seconds`` (it is then released by opening ``fifo`` for writing)."""
    outcome: list[BaseException | None] = []

    def build() -> None:
        try:
            tls_context(options)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=build, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        assert fifo is not None
        os.close(os.open(fifo, os.O_WRONLY))  # release OpenSSL's read: it sees EOF
        worker.join(10)
        pytest.fail(f"tls_context blocked on {fifo} for more than {seconds} s")
    assert outcome, "tls_context neither returned nor raised"
    assert outcome[0] is not None, "tls_context accepted it"
    return outcome[0]


@pytest.mark.parametrize("key", ["ca", "cert", "key"])
def test_a_fifo_as_a_tls_file_is_refused_at_once(tmp_path: Path, key: str) -> None:
    pki = make_test_pki(tmp_path / "pki")
    fifo = tmp_path / f"{key}.fifo"
    os.mkfifo(fifo)
    files = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key, key: fifo}
    options = TlsOptions(ca_file=files["ca"], cert_file=files["cert"], key_file=files["key"])
    err = _context_within(options, fifo, 3.0)
    assert isinstance(err, ConfigError)
    assert str(err) == (
        f"cannot load TLS files ({key}={fifo}): not a regular file (a folder, FIFO or "
        f"device); expected a readable PEM file of at most {TLS_FILE_MAX_BYTES} bytes"
    )


def test_folders_devices_and_huge_files_are_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pem"
    with huge.open("wb") as fh:
        fh.truncate(TLS_FILE_MAX_BYTES + 1)
    for key, path, why in [
        ("ca", tmp_path, "not a regular file"),
        ("cert", Path("/dev/zero"), "not a regular file"),
        ("ca", huge, f"larger than {TLS_FILE_MAX_BYTES} bytes"),
        ("ca", tmp_path / "missing.pem", "No such file or directory"),
    ]:
        options = TlsOptions(**{f"{key}_file": path})  # type: ignore[arg-type]
        err = _context_within(options, None, 10.0)
        assert isinstance(err, ConfigError)
        assert str(err).startswith(f"cannot load TLS files ({key}={path}): {why}"), str(err)


def test_good_tls_files_still_load(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    tls_context(TlsOptions(pki.ca, pki.client_cert, pki.client_key))


def test_a_tool_given_a_fifo_as_its_ca_says_so_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    done = run_cli("ls", "--broker", f"mqtts://127.0.0.1:1?ca={fifo}", timeout=30)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"spikestream ls: error: cannot load TLS files (ca={fifo}): not a regular file (a "
        f"folder, FIFO or device); expected a readable PEM file of at most "
        f"{TLS_FILE_MAX_BYTES} bytes"
    )
