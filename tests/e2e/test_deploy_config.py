"""The shipped broker configuration (``deploy/mosquitto/``) works as documented.

mosquitto runs with ``deploy/mosquitto/mosquitto.conf`` itself, rewritten only where a
test must differ: free loopback ports for the two listeners, a password file generated
in the temp directory, the log in a file, and the current user. The ACL is the shipped
``deploy/mosquitto/aclfile``, used in place. The service then runs against it as the
``spikestream`` user with its password in a file (as in deploy/compose.yaml), and:

* anonymous clients are refused;
* frames reach the ``monitor`` user, over the WebSocket listener browsers use;
* ``monitor`` cannot inject inputs or control commands (the service never accepts them);
* ``feeder`` can inject inputs, also with ``spikestream feed``, and read only a network's
  ``describe`` and ``status``;
* ``deploy/healthcheck.py`` reports the service healthy, and unhealthy without a broker.

Docker and Kubernetes cannot run here, so the compose file, the Dockerfile and the
manifests are checked statically against the repository: paths they copy or mount
exist, the network files in the ConfigMap are valid and sharded exactly once across the
replicas, and the names that tie the objects together agree.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest
import yaml  # PyYAML: installed with amqtt, a dependency of the service

from spikestream.serving.serve import select_shard
from spikestream.spec import load_network
from spikestream_client.codec import ValueFrame, decode_frame
from spikestream_client.transport import parse_broker_list
from tests.brokers import HOST, Mosquitto, MosquittoMissing, free_port, write_password_file
from tests.serving import NODELAY, ROOT, SEED, BackgroundClient, ServeProcess

pytestmark = pytest.mark.broker

DEPLOY = ROOT / "deploy"
CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
ACL = DEPLOY / "mosquitto" / "aclfile"
HEALTHCHECK = DEPLOY / "healthcheck.py"
USERS = {"spikestream": "svc-Pa55", "monitor": "mon-Pa55", "feeder": "feed-Pa55"}


def rewrite_config(
    text: str, *, port: int, ws_port: int, password_file: Path, acl_file: Path, log: Path
) -> str:
    """``text`` (the shipped mosquitto.conf) with the listeners on ``port`` (MQTT) and
    ``ws_port`` (WebSocket) on loopback, the given file paths, the log in ``log``, and
    the current user. Every other line is kept as it is.

    Raises:
        AssertionError: the shipped file lacks a line this rewrite expects.
    """
    out: list[str] = [f"user {getpass.getuser()}"]
    seen: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        key = words[0] if words and not words[0].startswith("#") else ""
        if key:
            seen[key] = seen.get(key, 0) + 1
        if key == "listener":
            assert words[1] in ("1883", "9001"), f"unexpected listener {line!r}"
            line = f"listener {port if words[1] == '1883' else ws_port} {HOST}"
        elif key == "password_file":
            line = f"password_file {password_file}"
        elif key == "acl_file":
            line = f"acl_file {acl_file}"
        elif key == "log_dest":
            line = f"log_dest file {log}"
        elif key in ("user", "persistence_location", "pid_file"):
            line = f"# (test) {line}"
        out.append(line)
    for key in ("listener", "password_file", "acl_file", "log_dest"):
        assert key in seen, f"{CONF} has no {key} line"
    return "\n".join(out) + "\n"


def directives(text: str) -> dict[str, list[str]]:
    """``{directive: [value, ...]}`` of a mosquitto config (comments dropped)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split(None, 1)
        if words and not words[0].startswith("#"):
            found.setdefault(words[0], []).append(words[1].strip() if len(words) > 1 else "")
    return found


class DeployedMosquitto(Mosquitto):
    """A :class:`~tests.brokers.Mosquitto` whose config is the shipped one, rewritten by
    :func:`rewrite_config` (so the port-retry, kill and log helpers still apply)."""

    def __init__(self, workdir: Path, users: Mapping[str, str]) -> None:
        super().__init__(workdir, websockets=True)
        self.accounts = dict(users)

    def write_config(self) -> None:
        password_file = self.workdir / "passwd"
        write_password_file(password_file, self.accounts)
        assert self.ws_port is not None
        self.config_path.write_text(
            rewrite_config(
                CONF.read_text(),
                port=self.port,
                ws_port=self.ws_port,
                password_file=password_file,
                acl_file=ACL,
                log=self.log_path,
            )
        )


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[DeployedMosquitto]:
    """mosquitto running the shipped configuration; killed at teardown."""
    try:
        broker = DeployedMosquitto(tmp_path / "mosquitto", USERS)
    except MosquittoMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()


class Recorder(BackgroundClient):
    """Records every message of one authenticated client (TCP or WebSocket)."""

    def __init__(self, port: int, user: str, filters: list[str], transport: str = "tcp") -> None:
        self.port = port
        self.user = user
        self.filters = filters
        self.transport = transport
        self.messages: list[tuple[str, bytes]] = []
        self.client: aiomqtt.Client | None = None

    async def _run(self) -> None:
        websockets = self.transport == "websockets"
        async with aiomqtt.Client(
            HOST,
            self.port,
            username=self.user,
            password=USERS[self.user],
            identifier=f"test-{self.user}",
            transport="websockets" if websockets else "tcp",
            websocket_path="/mqtt" if websockets else None,
            socket_options=() if websockets else NODELAY,
        ) as client:
            self.client = client
            for f in self.filters:
                await client.subscribe(f, qos=1)
            self._ready.set()
            async for msg in client.messages:
                assert isinstance(msg.payload, bytes)
                self.messages.append((str(msg.topic), msg.payload))

    async def publish(self, topic: str, payload: str) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK (which, over MQTT 5,
        carries "not authorised" when the ACL denies it: aiomqtt does not raise)."""
        assert self.client is not None
        await self.client.publish(topic, payload, qos=1, timeout=5)

    def on(self, suffix: str) -> list[bytes]:
        return [p for t, p in self.messages if t.endswith(suffix)]


async def until(predicate: Any, within: float, what: str) -> Any:
    """Poll ``predicate()`` until truthy (returned); fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
    return result


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def client_command(
    user: str, port: int, workdir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``spikestream ARGS --broker mqtt://HOST:port`` logged in as ``user`` with its
    password in a file (as deploy/compose.yaml runs the clients)."""
    password_file = workdir / f"{user}.password"
    password_file.write_text(USERS[user] + "\n")
    env = {
        **os.environ,
        "SPIKESTREAM_MQTT_USERNAME": user,
        "SPIKESTREAM_MQTT_PASSWORD_FILE": str(password_file),
    }
    command = [sys.executable, "-m", "spikestream", *args, "--broker", f"mqtt://{HOST}:{port}"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_shipped_config_has_the_documented_settings() -> None:
    """The settings README.md promises are in the file (checked by value, since the e2e
    test below would also pass with, e.g., Nagle's algorithm left on)."""
    conf = directives(CONF.read_text())
    assert conf["allow_anonymous"] == ["false"]
    assert conf["set_tcp_nodelay"] == ["true"]
    assert conf["listener"] == ["1883", "9001"]
    assert conf["protocol"] == ["mqtt", "websockets"]
    assert conf["persistence"] == ["false"]
    assert len(conf["password_file"]) == 1
    assert len(conf["acl_file"]) == 1
    acl = directives(ACL.read_text())
    assert acl["user"] == ["spikestream", "monitor", "feeder"]


async def test_shipped_broker_config_enforces_the_acl(
    deployed: DeployedMosquitto, tmp_path: Path
) -> None:
    """Service, monitor (WebSocket) and feeder against the shipped config and ACL."""
    # Anonymous clients are refused.
    with pytest.raises(aiomqtt.MqttError, match="Not authorized"):
        async with aiomqtt.Client(HOST, deployed.port, identifier="anon", timeout=5):
            pass
    password_file = tmp_path / "spikestream.password"
    password_file.write_text(USERS["spikestream"] + "\n")
    metrics_port = free_port()
    proc = ServeProcess(
        SEED,
        f"mqtt://{HOST}:{deployed.port}",
        "--stats-interval",
        "0.5",
        "--metrics-port",
        str(metrics_port),
        workdir=tmp_path,
        env={
            "SPIKESTREAM_MQTT_USERNAME": "spikestream",
            "SPIKESTREAM_MQTT_PASSWORD_FILE": str(password_file),
        },
    )
    assert deployed.ws_port is not None
    monitor = Recorder(deployed.ws_port, "monitor", ["spikestream/#"], transport="websockets")
    feeder = Recorder(deployed.port, "feeder", ["spikestream/#"])
    proc.start()
    try:
        async with monitor, feeder:
            try:
                await until(lambda: b"online" in monitor.on("/status"), 20, "online")
            except AssertionError as err:
                # Seen once in a full-suite run, never alone: keep what both sides said,
                # for the next time.
                raise AssertionError(
                    f"{err}\nserve log (end):\n{proc.log_text()[-4000:]}\n"
                    f"broker log (end):\n{deployed.log_text()[-4000:]}\n"
                    f"monitor saw {len(monitor.messages)} messages"
                ) from None
            await until(lambda: len(monitor.on("/out/a_spikes")) > 10, 10, "frames")
            # The monitor tries to inject an input; then the feeder sends one, after the
            # broker acknowledged the monitor's.
            await monitor.publish("spikestream/seed/in/u", "0.25")
            await feeder.publish("spikestream/seed/in/u", "0.75")

            def u_values() -> set[float]:
                values: set[float] = set()
                for payload in monitor.on("/out/u"):
                    frame = decode_frame(payload)
                    assert isinstance(frame, ValueFrame)
                    values.update(np.unique(frame.data).tolist())
                return values

            await until(lambda: 0.75 in u_values(), 10, "the feeder's input in the u probe")
            stats = await until(
                lambda: [
                    s
                    for s in map(json.loads, monitor.on("/stats"))
                    if s["inputs"]["u"]["accepted"] >= 1
                ],
                10,
                "stats counting the accepted input",
            )
            # The monitor tries to pause the network.
            await monitor.publish("spikestream/seed/control", "pause")
            frames = len(monitor.on("/out/a_spikes"))
            await asyncio.sleep(1.0)
            after = len(monitor.on("/out/a_spikes"))
            assert after > frames + 50, f"frames stopped: {frames} -> {after} in 1 s"
            last = json.loads(monitor.on("/stats")[-1])
            health = await asyncio.to_thread(healthcheck, metrics_port)

            def feed_u(*signal: str) -> subprocess.CompletedProcess[str]:
                """``feed`` into seed's u as the feeder, for half a second at 20/s."""
                command = ["feed", "--net", "seed", "--input", "u", *signal]
                command += ["--duration", "0.5", "--rate", "20"]
                return client_command("feeder", deployed.port, tmp_path, *command)

            # The feed command itself, as the compose file runs it: it reads the network's
            # describe document first, so the feeder must be able to.
            feed = await asyncio.to_thread(feed_u, "constant", "--value", "0.5")
            assert feed.returncode == 0, feed.stderr
            await until(lambda: 0.5 in u_values(), 10, "the feed command's input in u")
            # Values the service refuses (three numbers for a one-number input) are counted
            # by feed from the events the feeder may read.
            wrong = await asyncio.to_thread(
                feed_u, "--no-check", "--dim", "3", "constant", "--value", "0.5"
            )
            assert wrong.returncode == 0, wrong.stderr
            assert re.search(r"rejected by the service [1-9]", wrong.stderr), wrong.stderr
            # The monitor user lists the networks, each with its describe document, and
            # does not wait out --wait: its sync topic is allowed.
            started = time.monotonic()
            listing = await asyncio.to_thread(
                client_command, "monitor", deployed.port, tmp_path, "ls", "--json", "--wait", "10"
            )
            assert listing.returncode == 0, listing.stderr
            assert time.monotonic() - started < 8.0
            (seed,) = json.loads(listing.stdout)
            assert seed["net"] == "seed"
            assert seed["status"] == "online"
            assert set(seed["describe"]["inputs"]) == {"u"}
            # Neither client was refused anything (a refusal is logged on stderr).
            assert "refused" not in feed.stderr + wrong.stderr + listing.stderr
            assert proc.returncode is None
        events = [json.loads(p) for p in monitor.on("/events")]
        # Exactly one input accepted (the feeder's); the monitor's never reached it.
        assert stats[0]["inputs"]["u"]["accepted"] == 1
        assert last["inputs"]["u"]["accepted"] == 1
        assert 0.25 not in u_values()
        assert last["paused"] is False
        assert not [e for e in events if e["event"].startswith("control")]
        # The feeder may write inputs, and read only what feed checks first (and the
        # clients' sync topics, which the service never reads).
        read = {topic for topic, _ in feeder.messages}
        assert {t for t in read if not t.startswith("spikestream/_sync/")} == {
            "spikestream/seed/describe",
            "spikestream/seed/status",
            "spikestream/seed/events",
        }
        # The service was refused nothing: its describe document, status and every
        # frame, event and stats message were allowed.
        assert "refused a publish" not in proc.log_text()
        assert monitor.on("/describe")
        assert health.returncode == 0, health.stdout
        # Without a broker the health check says so.
        await asyncio.to_thread(deployed.stop)
        await asyncio.sleep(0.5)
        down = await asyncio.to_thread(healthcheck, metrics_port)
        assert down.returncode == 1
        assert "not connected" in down.stdout
    finally:
        proc.kill()
    log = deployed.log_text()
    assert re.search(r"New client connected from \S+ as test-monitor", log)
    assert USERS["spikestream"] not in proc.log_text()


def k8s_objects() -> dict[str, dict[str, Any]]:
    """The manifests of deploy/k8s (one object per file), by kind."""
    objects = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            objects[doc["kind"]] = doc
    return objects


def test_k8s_manifests_shard_every_network_exactly_once(tmp_path: Path) -> None:
    """The StatefulSet serves exactly the ConfigMap's networks, valid ones, each on one
    replica; its Secret, Service and volumes are the ones the other manifests define."""
    objects = k8s_objects()
    sts, config = objects["StatefulSet"], objects["ConfigMap"]
    service, secret = objects["Service"], objects["Secret"]
    kustomization = objects["Kustomization"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    args = container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # The network files: every ConfigMap entry is a valid network, and the argument
    # list names each of them once, from where the ConfigMap is mounted.
    names = []
    for key, text in config["data"].items():
        (tmp_path / key).write_text(text)
        names.append(load_network(tmp_path / key).name)
    assert len(set(names)) == len(names)
    files = [a for a in args if a.endswith(".toml")]
    assert sorted(Path(f).name for f in files) == sorted(config["data"])
    assert {str(Path(f).parent) for f in files} == {mounts["networks"]}
    assert volumes["networks"]["configMap"]["name"] == config["metadata"]["name"]
    # --shard auto/$(SHARDS), with SHARDS = replicas: every file on exactly one replica.
    replicas = sts["spec"]["replicas"]
    assert env["SHARDS"] == str(replicas)
    assert args[args.index("--shard") + 1] == "auto/$(SHARDS)"
    shards = [
        select_shard([Path(f) for f in files], f"auto/{replicas}", f"{sts['metadata']['name']}-{i}")
        for i in range(replicas)
    ]
    assert sorted(str(f) for shard in shards for f in shard) == sorted(files)
    assert "--resume" in args
    assert "--snapshot-every" in args
    assert env["SPIKESTREAM_SNAPSHOT_DIR"].startswith(mounts["state"])
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
    # Credentials: a file from the Secret, never the password in the environment.
    assert volumes["mqtt"]["secret"]["secretName"] == secret["metadata"]["name"]
    password_file = env["SPIKESTREAM_MQTT_PASSWORD_FILE"]
    assert password_file == f"{mounts['mqtt']}/password"
    assert "SPIKESTREAM_MQTT_PASSWORD" not in env
    # The headless Service governs the StatefulSet and exposes the metrics port.
    assert service["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    metrics_port = int(env["SPIKESTREAM_METRICS_PORT"])
    assert container["ports"][0]["containerPort"] == metrics_port
    assert pod_annotation(sts, "prometheus.io/port") == str(metrics_port)
    assert objects["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "metrics"
    assert container["readinessProbe"]["exec"]["command"] == ["spikestream-healthcheck"]
    listed = kustomization["resources"]
    assert all((DEPLOY / "k8s" / r).is_file() for r in listed)


def test_k8s_broker_list_names_the_nodes_of_one_cluster() -> None:
    """Every replica gets the same list of broker nodes (URLs only, each node once), which
    the service accepts as it stands in the manifest."""
    pod = k8s_objects()["StatefulSet"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    nodes = parse_broker_list(env["SPIKESTREAM_BROKER"])
    assert len(nodes) >= 3
    assert all(node.kind == "url" for node in nodes)
    assert len({(node.host, node.port) for node in nodes}) == len(nodes)
    # A lost node is noticed within about 1.5 x keepalive; the manifests keep it short.
    assert int(env["SPIKESTREAM_KEEPALIVE"]) <= 5


def pod_annotation(sts: dict[str, Any], key: str) -> str:
    return str(sts["spec"]["template"]["metadata"]["annotations"][key])


def test_compose_and_dockerfile_refer_to_files_that_exist() -> None:
    """Every path the compose file mounts or builds from, and every file the Dockerfile
    copies from the repository, exists; the services log in as the ACL's users."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"mosquitto", "spikestream", "monitor"} <= set(services)
    for name, svc in services.items():
        build = svc.get("build")
        if build is not None:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    conf = directives(CONF.read_text())
    mounted = [v.split(":")[1] for v in services["mosquitto"]["volumes"]]
    for key in ("password_file", "acl_file"):
        assert any(conf[key][0].startswith(m + "/") for m in mounted), key
    users = directives(ACL.read_text())["user"]
    for name in ("spikestream", "monitor", "feeder"):
        if name in services:
            assert services[name]["environment"]["SPIKESTREAM_MQTT_USERNAME"] in users
    served = [a for a in services["spikestream"]["command"] if a.endswith(".toml")]
    assert served
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.MULTILINE)
    assert copies
    for line in copies:
        words = [w for w in shlex.split(line) if not w.startswith("--")]
        for source in words[:-1]:
            assert list(ROOT.glob(source)), f"Dockerfile copies {source!r}: not in the repo"
    for path in served:
        assert (ROOT / "examples" / Path(path).name).is_file(), path
    assert re.search(r"^USER (?!0|root)\S+", dockerfile, flags=re.MULTILINE)
    assert re.search(
        r"^HEALTHCHECK .*spikestream-healthcheck", dockerfile, flags=re.MULTILINE | re.DOTALL
    )
    assert re.search(r'^ENTRYPOINT \["spikestream"', dockerfile, flags=re.MULTILINE)
