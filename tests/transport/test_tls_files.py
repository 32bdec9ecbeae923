"""TLS file paths (``?ca=``, ``?cert=``, ``?key=``, the service's ``tls_*`` settings) are
checked before OpenSSL opens them: a FIFO blocked every tool for ever, deaf to SIGINT and
SIGTERM (the wait is inside OpenSSL's C code), and a device was read without end."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from pathlib import Path
from typing import cast

import pytest

from spikestream.errors import ConfigError
from spikestream_client.transport.tls import (
    TLS_FILE_MAX_BYTES,
    collecting_sockets,
    tls_context,
    track,
)
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


def _trusted_names(context: ssl.SSLContext) -> set[str]:
    """The common names of the CA certificates ``context`` trusts (loaded from files)."""
    names: set[str] = set()
    for cert in context.get_ca_certs():
        subject = cast("tuple[tuple[tuple[str, str], ...], ...]", cert["subject"])
        names.update(value for rdn in subject for key, value in rdn if key == "commonName")
    return names


def test_a_pinned_ca_is_the_one_trusted_and_without_it_the_system_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``?ca=`` pins the broker's CA: the context must trust that CA and not the system
    store, or any public certificate would pass for the broker. Without it the system
    store (here pointed at another CA by OpenSSL's own variables) is what is trusted."""
    pki = make_test_pki(tmp_path / "pki")
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    assert _trusted_names(tls_context(TlsOptions(ca_file=pki.ca))) == {"spikestream-test-ca"}
    assert _trusted_names(tls_context(None)) == {"spikestream-test-other-ca"}


def test_verification_is_on_unless_insecure_is_asked(tmp_path: Path) -> None:
    """The default context checks the certificate chain and the host name; only
    ``insecure`` turns both off, and then both (a chain check without the host name, or
    the reverse, would pass a man in the middle or refuse a lab broker)."""
    pki = make_test_pki(tmp_path / "pki")
    for context in (tls_context(None), tls_context(TlsOptions(ca_file=pki.ca))):
        assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    lax = tls_context(TlsOptions(ca_file=pki.ca, insecure=True))
    assert (lax.verify_mode, lax.check_hostname) == (ssl.CERT_NONE, False)


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path) -> None:
    """The client certificate and key are loaded when the context is built, so a wrong
    key is a config error naming the files, not a handshake failure much later."""
    pki = make_test_pki(tmp_path / "pki")
    options = TlsOptions(pki.ca, pki.client_cert, pki.server_key)
    with pytest.raises(ConfigError) as info:
        tls_context(options)
    assert str(info.value).startswith(
        f"cannot load TLS files (ca={pki.ca}, cert={pki.client_cert}, key={pki.server_key}): "
    )


def test_a_pem_with_non_utf8_comments_still_loads(tmp_path: Path) -> None:
    """Text around the PEM blocks is OpenSSL's to skip, whatever its encoding (bundles
    carry Latin-1 comments): the size check must not refuse or crash on it."""
    pki = make_test_pki(tmp_path / "pki")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"# Certification Authority \xe9\xe8\n" + pki.ca.read_bytes())
    assert _trusted_names(tls_context(TlsOptions(ca_file=bundle))) == {"spikestream-test-ca"}


def test_four_mebibytes_load_and_one_byte_more_does_not(tmp_path: Path) -> None:
    """The cap is 4 MiB inclusive, as documented: a bundle of exactly that size is
    accepted and one byte more is refused before OpenSSL reads it."""
    pki = make_test_pki(tmp_path / "pki")
    bundle = tmp_path / "bundle.pem"
    pem = pki.ca.read_bytes()
    bundle.write_bytes(pem + b"\n" * (4 * 2**20 - len(pem)))
    assert _trusted_names(tls_context(TlsOptions(ca_file=bundle))) == {"spikestream-test-ca"}
    bundle.write_bytes(pem + b"\n" * (4 * 2**20 + 1 - len(pem)))
    with pytest.raises(ConfigError, match=r"larger than 4194304 bytes"):
        tls_context(TlsOptions(ca_file=bundle))


def test_a_nul_byte_in_a_tls_path_is_a_config_error(tmp_path: Path) -> None:
    """``?ca=/etc/ca%00.pem`` decodes to a path with a NUL byte, which ``os.open`` refuses
    with a bare ValueError: it must be the one-line config error every other bad path
    gets, not a traceback from the tools."""
    with pytest.raises(ConfigError) as info:
        tls_context(TlsOptions(ca_file=Path("/etc/ca\x00.pem")))
    assert str(info.value).startswith(
        "cannot load TLS files (ca=/etc/ca\x00.pem): the path holds a NUL byte; expected"
    )


def test_sockets_are_collected_only_inside_the_block() -> None:
    """The adapter closes what the block collected when paho's connect fails: a socket
    missed (the TLS wrapper included) stays open for ever, and one made after the block
    must not be collected, or a later failure would close a live connection."""
    with socket.socket() as before, socket.socket() as plain, socket.socket() as raw:
        with collecting_sockets() as created:
            track(plain)
            wrapped = tls_context(None).wrap_socket(
                raw, server_hostname="localhost", do_handshake_on_connect=False
            )
        with socket.socket() as after:
            track(before)
            track(after)
        wrapped.close()
    assert created == [plain, wrapped]
