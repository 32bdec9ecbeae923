"""Start and stop real mosquitto brokers for tests.

Each :class:`Mosquitto` runs ``mosquitto -c <tmp>/mosquitto.conf`` as a subprocess on a
free loopback port (never the system broker on 1883), with ``set_tcp_nodelay true``,
no persistence and its log in the temp directory. It can be stopped (SIGTERM), killed
(SIGKILL), paused (SIGSTOP, to fake a half-open peer) and restarted on the same port.

Optional: a password file (hashed by ``mosquitto_passwd`` when available, else written
in mosquitto's PBKDF2-SHA512 ``$7$`` format), an ACL file, and a WebSocket listener.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import quote

MOSQUITTO_BIN = os.environ.get("SPIKESTREAM_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD_BIN = shutil.which("mosquitto_passwd")
INSTALL_HINT = "install it with: apt-get install -y mosquitto"
HOST = "127.0.0.1"


class MosquittoMissing(RuntimeError):
    """The mosquitto binary is not installed."""


def mosquitto_binary() -> str:
    """Path of the mosquitto executable; raises :class:`MosquittoMissing` with the fix."""
    return _binary(MOSQUITTO_BIN, "mosquitto", "mosquitto broker", INSTALL_HINT, MosquittoMissing)


def _binary(preferred: str, name: str, what: str, hint: str, missing: type[RuntimeError]) -> str:
    """``preferred`` if it exists, else ``name`` on PATH; ``missing(message)`` if neither
    is an executable (the message says how to install it)."""
    path = preferred if os.path.exists(preferred) else shutil.which(name)
    if path is None or not os.access(path, os.X_OK):
        msg = f"{what} not found (looked for {preferred} and on PATH); {hint}"
        raise missing(msg)
    return path


_HANDED_OUT: set[int] = set()


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it; bind soon), and that this
    process has not handed out before: the OS may offer a just-released port again, and
    a server given the same port for two listeners (a NATS node's client and cluster
    ports, say) fails to start."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether a TCP connect to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hash_password(password: str, *, iterations: int = 101, salt: bytes | None = None) -> str:
    """Mosquitto 2.x password-file hash (``$7$`` = PBKDF2-HMAC-SHA512)."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write a mosquitto password file for ``users`` (name -> clear password)."""
    if MOSQUITTO_PASSWD_BIN is not None:
        path.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
        # -U hashes the clear-text file in place.
        subprocess.run([MOSQUITTO_PASSWD_BIN, "-U", str(path)], check=True, capture_output=True)
    else:
        path.write_text("".join(f"{u}:{hash_password(p)}\n" for u, p in users.items()))
    path.chmod(0o600)


@dataclass(frozen=True)
class Pki:
    """A throw-away CA with a server certificate for 127.0.0.1/localhost and a client
    certificate, all PEM files in one directory."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # an unrelated CA: pinning it must make verification fail


def make_test_pki(directory: Path) -> Pki:
    """Generate :class:`Pki` with the ``openssl`` command line tool (EC P-256 keys)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        msg = "openssl not found; install it with: apt-get install -y openssl"
        raise RuntimeError(msg)
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name in ("ca", "other-ca"):
        run(
            "req",
            "-x509",
            *ec,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-subj",
            f"/CN=spikestream-test-{name}",
        )
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        run(
            "req",
            *ec,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN=spikestream-test-{name}",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )


class _BrokerProcess:
    """What every broker process of these helpers has: the process and its state."""

    proc: subprocess.Popen[bytes] | None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


class Mosquitto(_BrokerProcess):
    """One mosquitto process with its own config, log and ports.

    Args:
        workdir: Directory for config, password/ACL files and the log (created).
        port: MQTT port; a free one by default.
        users: ``{name: password}``; when given, anonymous access is off unless
            ``allow_anonymous`` says otherwise.
        acl: Content of an ACL file (mosquitto syntax), or ``None``.
        allow_anonymous: Override the default (``True`` without users).
        websockets: Also listen for MQTT over WebSocket on :attr:`ws_port`.
        tls: Also listen for MQTT over TLS on :attr:`tls_port` with these certificates.
        require_certificate: On the TLS listener, demand a client certificate.
        nodelay: ``set_tcp_nodelay`` in the broker (on by default, as in production).
        extra_config: Lines appended to the config.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        allow_anonymous: bool | None = None,
        websockets: bool = False,
        tls: Pki | None = None,
        require_certificate: bool = False,
        nodelay: bool = True,
        extra_config: str = "",
    ) -> None:
        self.binary = mosquitto_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self._port_fixed = port is not None
        self.port = port if port is not None else free_port()
        self.ws_port: int | None = free_port() if websockets else None
        self.tls = tls
        self.require_certificate = require_certificate
        self.tls_port: int | None = free_port() if tls is not None else None
        self.users = dict(users or {})
        self.acl = acl
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.nodelay = nodelay
        self.extra_config = extra_config
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.stderr_path = self.workdir / "mosquitto.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.starts = 0

    # -- addresses -------------------------------------------------------------------
    def url(self, username: str | None = None, password: str | None = None) -> str:
        """``mqtt://[user[:password]@]127.0.0.1:<port>``."""
        return f"mqtt://{_userinfo(username, password)}{self.host}:{self.port}"

    def tls_url(self, query: str = "") -> str:
        """``mqtts://127.0.0.1:<tls_port>[?query]`` (requires ``tls=``)."""
        if self.tls_port is None:
            msg = "this broker was created without tls="
            raise RuntimeError(msg)
        return f"mqtts://{self.host}:{self.tls_port}" + (f"?{query}" if query else "")

    def ws_url(self, username: str | None = None, password: str | None = None) -> str:
        """``ws://...:<ws_port>/mqtt`` (requires ``websockets=True``)."""
        if self.ws_port is None:
            msg = "this broker was created without websockets=True"
            raise RuntimeError(msg)
        return f"ws://{_userinfo(username, password)}{self.host}:{self.ws_port}/mqtt"

    # -- process control -------------------------------------------------------------

    def write_config(self) -> None:
        lines = [
            # Run as root, mosquitto would switch to the "mosquitto" user and then fail
            # to write the log in our temp directory; stay the current user.
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
        ]
        if self.ws_port is not None:
            lines += [f"listener {self.ws_port} {self.host}", "protocol websockets"]
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_certificate else 'false'}",
            ]
        lines += [
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"set_tcp_nodelay {'true' if self.nodelay else 'false'}",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
        ]
        if self.users:
            password_file = self.workdir / "passwords"
            write_password_file(password_file, self.users)
            lines.append(f"password_file {password_file}")
        if self.acl is not None:
            acl_file = self.workdir / "acl"
            acl_file.write_text(self.acl)
            lines.append(f"acl_file {acl_file}")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the MQTT (and WebSocket) port accepts connections."""
        if self.running:
            return
        attempts = 1 if (self._port_fixed or self.starts) else 3
        for attempt in range(attempts):
            self.write_config()
            self._spawn()
            if self._wait_ready(timeout):
                self.starts += 1
                return
            self.kill()
            if attempt + 1 < attempts and "Address already in use" in self.log_text():
                # free_port() raced with another process: pick new ports and retry.
                self.port = free_port()
                if self.ws_port is not None:
                    self.ws_port = free_port()
                if self.tls_port is not None:
                    self.tls_port = free_port()
                continue
            break
        msg = (
            f"mosquitto did not come up on {self.host}:{self.port} within {timeout} s.\n"
            f"--- log ---\n{self.log_text()}"
        )
        raise RuntimeError(msg)

    def _spawn(self) -> None:
        self._close_stderr()
        stderr = self.stderr_path.open("ab")
        self._stderr = stderr
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.ws_port, self.tls_port) if p is not None]
        while time.monotonic() < deadline:
            if not self.running:
                return False
            if all(port_accepts(self.host, p) for p in ports):
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM and wait (SIGKILL if it does not exit within ``timeout`` s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything cleanly."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.resume()  # a stopped process must be continued to die promptly
            self.proc.kill()
            self.proc.wait()
        self._reap()

    def pause(self) -> None:
        """SIGSTOP: sockets stay open but nothing answers (a half-open peer)."""
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop (SIGTERM) if running, then start again on the same port(s)."""
        self.stop()
        self.start(timeout)

    def _reap(self) -> None:
        self.proc = None
        self._close_stderr()

    def _close_stderr(self) -> None:
        stderr, self._stderr = self._stderr, None
        if stderr is not None:
            with contextlib.suppress(OSError):
                stderr.close()

    # -- diagnostics -----------------------------------------------------------------
    def log_text(self) -> str:
        """The broker log plus its stderr so far (for failure messages; mosquitto also
        echoes log lines to stderr, so do not count lines in this)."""
        parts = []
        for path in (self.log_path, self.stderr_path):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def count_in_log(self, needle: str) -> int:
        """Number of lines of the broker log file containing ``needle``."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(needle in line for line in text.splitlines())

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Mosquitto({self.host}:{self.port}, pid={self.pid}, {state})"


def _userinfo(username: str | None, password: str | None) -> str:
    if username is None:
        return ""
    info = quote(username, safe="")
    if password is not None:
        info += ":" + quote(password, safe="")
    return info + "@"


#: The ``mosquitto_factory`` fixture: ``make(**Mosquitto options) -> running Mosquitto``.
MosquittoFactory = Callable[..., Mosquitto]


# ----------------------------------------------------------------------------- NATS

NATS_BIN = os.environ.get("SPIKESTREAM_TEST_NATS", "/usr/sbin/nats-server")
NATS_INSTALL_HINT = "install it with: apt-get install -y nats-server"


class NatsMissing(RuntimeError):
    """The nats-server binary is not installed."""


def nats_binary() -> str:
    """Path of the nats-server executable; raises :class:`NatsMissing` with the fix."""
    return _binary(NATS_BIN, "nats-server", "nats-server", NATS_INSTALL_HINT, NatsMissing)


def mqtt_connack(host: str, port: int, timeout: float = 2.0) -> int | None:
    """Send an MQTT 3.1.1 CONNECT (clean session, no will) and return the CONNACK return
    code (0 = accepted), or ``None`` if nothing MQTT answered within ``timeout`` s."""
    client_id = f"probe-{os.getpid()}-{time.monotonic_ns() % 10**9}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x05"  # protocol name, level 4, clean session, ka 5
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(bytes((0x10, len(body))) + body)
            connack = b""
            while len(connack) < 4:
                chunk = sock.recv(4 - len(connack))
                if not chunk:
                    return None
                connack += chunk
            if connack[0] != 0x20:
                return None
            if connack[3] == 0:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return connack[3]
    except OSError:
        return None


class NatsNode(_BrokerProcess):
    """One ``nats-server`` of a :class:`NatsCluster` (MQTT enabled, JetStream on)."""

    def __init__(self, workdir: Path, name: str, cluster_name: str) -> None:
        self.binary = nats_binary()
        self.name = name
        self.cluster_name = cluster_name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.client_port = free_port()
        self.cluster_port = free_port()
        self.mqtt_port = free_port()
        self.http_port = free_port()
        self.store_dir = self.workdir / "jetstream"
        self.config_path = self.workdir / "nats.conf"
        self.log_path = self.workdir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def port(self) -> int:
        """The MQTT port (what spikestream connects to)."""
        return self.mqtt_port

    def url(self) -> str:
        """``mqtt://127.0.0.1:<mqtt_port>``."""
        return f"mqtt://{self.host}:{self.mqtt_port}"

    def write_config(self, routes: list[int]) -> None:
        route_list = ", ".join(f"nats-route://{self.host}:{p}" for p in routes)
        self.config_path.write_text(
            f"server_name: {self.name}\n"
            f"listen: {self.host}:{self.client_port}\n"
            f"http: {self.host}:{self.http_port}\n"
            f'jetstream {{ store_dir: "{self.store_dir}" }}\n'
            f"cluster {{\n  name: {self.cluster_name}\n"
            f"  listen: {self.host}:{self.cluster_port}\n  routes: [{route_list}]\n}}\n"
            f"mqtt {{ listen: {self.host}:{self.mqtt_port} }}\n"
        )

    def spawn(self) -> None:
        """Start the process (readiness is the cluster's business)."""
        if self.running:
            return
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: the node vanishes; its clients' sockets are reset by the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown) and wait; SIGKILL after ``timeout`` s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _monitor(self, path: str) -> dict[str, Any] | None:
        """GET a monitoring endpoint; its JSON, or ``None`` (not up, or not HTTP 200)."""
        import json
        import urllib.error
        import urllib.request

        try:
            url = f"http://{self.host}:{self.http_port}{path}"
            with urllib.request.urlopen(url, timeout=2.0) as reply:
                return dict(json.load(reply))
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def healthy(self, peers: int = 0) -> bool:
        """The node is fully back: ``/healthz`` says its JetStream is current, it has a
        route to each of ``peers`` other nodes (until then messages published on it do
        not reach their subscribers there), and the MQTT port accepts a login (NATS
        answers MQTT only once its MQTT streams are usable: after a kill -9 that takes
        several seconds)."""
        if self._monitor("/healthz?js-server-only=true") is None:
            return False
        routes = self._monitor("/routez")
        if routes is None or int(routes.get("num_routes", 0)) < peers:
            return False
        return mqtt_connack(self.host, self.mqtt_port) == 0

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"NatsNode({self.name}, mqtt={self.host}:{self.mqtt_port}, {state})"


class NatsCluster:
    """Three (or ``size``) ``nats-server`` processes forming one cluster on loopback, each
    with an MQTT listener and JetStream (which NATS needs for MQTT sessions and retained
    messages), on free ports with their own store directories.

    Nodes can be killed (SIGKILL), stopped (SIGTERM) and started again on the same ports
    and store, one at a time, as in a rolling restart.
    """

    def __init__(self, workdir: Path, size: int = 3) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, got {size}")
        self.workdir = Path(workdir)
        name = f"spikestream-test-{os.getpid()}"
        self.nodes = [NatsNode(self.workdir / f"n{i}", f"n{i}", name) for i in range(size)]
        routes = [n.cluster_port for n in self.nodes]
        for node in self.nodes:
            node.write_config(routes)

    def urls(self, *indices: int) -> list[str]:
        """The MQTT URLs of the given nodes (all, in order, by default)."""
        chosen = indices or tuple(range(len(self.nodes)))
        return [self.nodes[i].url() for i in chosen]

    def broker_list(self, *indices: int) -> str:
        """The nodes' URLs as one comma-separated ``--broker`` value."""
        return ",".join(self.urls(*indices))

    def start(self, timeout: float = 30.0) -> None:
        """Start every node and wait until each is healthy and answers MQTT logins."""
        for node in self.nodes:
            node.spawn()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30.0, nodes: list[NatsNode] | None = None) -> None:
        """Wait until ``nodes`` (default: every running node) are healthy."""
        deadline = time.monotonic() + timeout
        pending = [n for n in (nodes or self.nodes) if n.running]
        while pending:
            for node in list(pending):
                if not node.running:
                    msg = f"{node!r} exited while starting:\n{node.log_text()[-3000:]}"
                    raise RuntimeError(msg)
                if node.healthy(peers=len(self.nodes) - 1):
                    pending.remove(node)
            if pending and time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name} ---\n{n.log_text()[-2000:]}" for n in pending)
                msg = f"NATS nodes {[n.name for n in pending]} not healthy in {timeout} s\n{logs}"
                raise RuntimeError(msg)
            if pending:
                time.sleep(0.1)

    def wait_settled(self, timeout: float = 60.0, streams_within: float = 15.0) -> None:
        """What an operator waits for between the steps of a rolling restart: every
        running node healthy (JetStream current, routes up, MQTT logins accepted), then
        up to ``streams_within`` seconds for the full ``/healthz`` (every stream and
        consumer current; a consumer of a stopped node's session can stay behind for
        much longer, so that part is waited for, not required)."""
        self.wait_healthy(timeout, [n for n in self.nodes if n.running])
        deadline = time.monotonic() + streams_within
        while any(n.running and n._monitor("/healthz") is None for n in self.nodes):
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def kill(self, index: int) -> None:
        """SIGKILL node ``index``."""
        self.nodes[index].kill()

    def stop(self, index: int) -> None:
        """SIGTERM node ``index`` and wait for it to exit."""
        self.nodes[index].stop()

    def restart(self, index: int, timeout: float = 30.0) -> None:
        """Start node ``index`` again (same ports and store) and wait until it is healthy."""
        node = self.nodes[index]
        node.spawn()
        self.wait_healthy(timeout, [node])

    def close(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()  # no node left running when the cluster never came up
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def jetstream_leaders(node: NatsNode) -> dict[str, list[str]]:
    """Which node leads which JetStream raft group, as ``node``'s ``/jsz`` reports it:
    ``{server name: ["meta", "stream $MQTT_sess", "consumer $MQTT_rmsgs/...", ...]}``.

    NATS keeps MQTT sessions and retained messages in replicated JetStream streams; killing
    the leader of one of those groups costs a raft election (4-9 s in nats-server 2.9)
    before MQTT logins succeed again anywhere in the cluster."""
    import json
    import urllib.request

    url = f"http://{node.host}:{node.http_port}/jsz?accounts=true&streams=true&consumers=true"
    with urllib.request.urlopen(url, timeout=2.0) as reply:
        info = json.load(reply)
    led: dict[str, list[str]] = {}
    meta = info.get("meta_cluster", {}).get("leader")
    if meta:
        led.setdefault(meta, []).append("meta")
    for account in info.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            leader = (stream.get("cluster") or {}).get("leader")
            if leader:
                led.setdefault(leader, []).append(f"stream {stream['name']}")
            for consumer in stream.get("consumer_detail") or []:
                leader = (consumer.get("cluster") or {}).get("leader")
                if leader:
                    led.setdefault(leader, []).append(
                        f"consumer {stream['name']}/{consumer['name']}"
                    )
    return led
