"""``spikestream serve``: the real-time MQTT service.

Settings come from, highest priority first: command-line flags, ``SPIKESTREAM_*``
environment variables, a TOML settings file (``--config``), then the defaults below.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from spikestream.budget import (
    DEFAULT_SHARE,
    SIZE_RULE,
    Estimate,
    check_budget,
    default_limit,
    estimate_serve,
    parse_bytes,
)
from spikestream.build import build
from spikestream.cli.run import add_python_functions_flag
from spikestream.cli.service import Service, ServiceOptions
from spikestream.errors import CodecError, ConfigError
from spikestream.nengo_import import load_network_or_model
from spikestream.serving.discovery import DEFAULT_HA_PREFIX
from spikestream.serving.text import DEFAULT_TEXT_RATE, MAX_TEXT_DIM, MAX_TEXT_RATE
from spikestream.spec import NetworkSpec
from spikestream.transport import resolve_broker
from spikestream_client.codec import validate_prefix
from spikestream_client.transport import (
    BrokerSpec,
    parse_broker_list,
    redacted_list,
    with_env_credentials,
)

log = logging.getLogger("spikestream.serve")


def integral(value: object) -> object:
    """``1e9``, ``"1e9"`` or ``1000.0`` as the integer they name; anything else unchanged
    (for pydantic to refuse). Counts are often written in exponent form."""
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    if isinstance(value, float) and math.isfinite(value) and value == math.floor(value):
        return int(value)
    return value


def count_arg(text: str) -> int:
    """argparse type of a count flag: an integer, also in exponent form (``1e6``)."""
    value = integral(text)
    if type(value) is not int:
        raise argparse.ArgumentTypeError(f"expected an integer (e.g. 100 or 1e3); got {text!r}")
    return value


#: An integer setting that may be written ``1e6``.
Count = Annotated[int, BeforeValidator(integral)]


class ServeSettings(BaseSettings):
    """Every ``serve`` setting. Environment: ``SPIKESTREAM_<NAME>`` (e.g.
    ``SPIKESTREAM_BROKER=mqtt://host:1883``).

    Every number is finite (``allow_inf_nan=False``) and in a stated range; the sizes that
    allocate (``ticks_per_frame``, ``queue_capacity``) are bounded by ``memory_limit``
    through the memory budget, checked before anything is built.
    """

    model_config = SettingsConfigDict(
        env_prefix="SPIKESTREAM_", extra="forbid", allow_inf_nan=False
    )

    broker: str = Field(
        "auto",
        description="mqtt://, mqtts://, ws://, wss:// URL(s), comma-separated for the nodes "
        "of a clustered broker; or 'embedded' or 'auto' alone",
    )
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    prefix: str = "spikestream"
    realtime_factor: float = Field(1.0, ge=0)
    overrun: Literal["catch-up", "skip", "slip"] = "catch-up"
    max_catchup: Count = Field(20, ge=1, le=1_000_000)
    ticks_per_frame: Count | None = Field(None, ge=1)
    queue_capacity: Count = Field(256, ge=1)
    queue_policy: Literal["drop-oldest", "coalesce"] = "drop-oldest"
    qos: Literal[0, 1, 2] = 0
    expiry: Count | None = Field(None, ge=1, le=2**32 - 1)  # MQTT: a four-byte interval
    keepalive: Count = Field(10, ge=1, le=65535)
    backoff_min: float = Field(0.2, gt=0, le=600)
    backoff_max: float = Field(5.0, gt=0, le=600)
    client_id: str | None = None
    dtype: Literal["float64", "float32"] | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # None: $XDG_STATE_HOME/spikestream/snapshots (serving.snapshots.default_snapshot_dir)
    snapshot_dir: Path | None = None
    snapshot_every: float | None = Field(None, gt=0)
    resume: bool = False
    shard: str | None = None
    restore: Path | None = None
    log_inputs: Path | None = None
    trace_latency: Path | None = None  # debug: input-to-output timestamps (runtime.trace)
    stats_interval: float = Field(1.0, gt=0, le=3600)
    max_input_bytes: Count = Field(65536, ge=16, le=268_435_455)  # MQTT's largest packet
    switch_interval: float = Field(0.0005, gt=0, le=0.1)
    rt_priority: int = Field(0, ge=0, le=99)
    spin: float = Field(0.0002, ge=0, le=0.01)
    cpu_latency: Count | None = Field(None, ge=0, le=2**31 - 1)  # the kernel's s32, in us
    # Opt-in to code execution: function = "module:attr" imports and calls that module.
    allow_python_functions: bool = False
    memory_limit: int | None = Field(
        None, description=f"bytes; {SIZE_RULE}; default {DEFAULT_SHARE:.0%} of physical memory"
    )
    text_rate: float | None = Field(None, gt=0, le=MAX_TEXT_RATE, allow_inf_nan=False)
    ha_discovery: str | None = None

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"expected {SIZE_RULE}")
        try:
            return parse_bytes(value)
        except ConfigError:
            raise ValueError(f"expected {SIZE_RULE}") from None

    @field_validator("ha_discovery")
    @classmethod
    def _ha_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_prefix(value)
        except CodecError as err:
            raise ValueError(str(err)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _CONFIG_FILE[0] is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE[0]))
        return tuple(sources)


# The TOML file the next ServeSettings() reads, set by load_settings(): pydantic-settings
# builds its sources from the class, so the path travels beside it.
_CONFIG_FILE: list[Path | None] = [None]


def load_settings(flags: dict[str, Any], config_file: Path | None) -> ServeSettings:
    """Merge flags (given, non-None), environment and the settings file.

    Raises:
        ConfigError: naming the setting, its value and what is allowed.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"settings file {str(config_file)!r} does not exist")
    _CONFIG_FILE[0] = config_file
    try:
        return ServeSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as err:
        # One line: each bad setting with its value and what is allowed.
        problems = []
        for e in err.errors(include_url=False):
            key = ".".join(str(p) for p in e["loc"])
            msg = str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{key}: {msg} (got {e.get('input')!r:.60})")
        raise ConfigError(
            "invalid serve setting (flag, SPIKESTREAM_* variable or settings file): "
            + "; ".join(problems)
        ) from None
    finally:
        _CONFIG_FILE[0] = None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``serve`` subcommand."""
    p = sub.add_parser(
        "serve",
        help="run a network in real time over MQTT",
        description=(
            "Serve NETWORK in real time: advance it in fixed dt ticks paced to the wall "
            "clock, read inputs from <prefix>/<net>/in/<input>, publish msgpack frames on "
            "<prefix>/<net>/out/<probe>, a retained online/offline status, events and "
            "stats. Every flag can also be set as SPIKESTREAM_<FLAG> in the environment "
            "or in a TOML settings file (--config)."
        ),
    )
    p.add_argument(
        "networks",
        type=Path,
        nargs="+",
        metavar="NETWORK",
        help="network file(s) (TOML), e.g. examples/seed.toml, or Nengo models MODEL.py[:NAME] "
        "(imported as by `spikestream import`, which runs the script); several are served by "
        "one process, each with its own tick thread and MQTT connection",
    )
    p.add_argument(
        "--shard",
        help="INDEX/COUNT: serve only the networks whose position i (in the order given) has "
        "i %% COUNT == INDEX; INDEX may be 'auto' to take the ordinal at the end of the host "
        "name (a Kubernetes StatefulSet pod, e.g. spikestream-2)",
    )
    p.add_argument(
        "--snapshot-every",
        type=float,
        metavar="S",
        help="write each network's state to SNAPSHOT_DIR/<net>-latest.npz every S seconds",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="start each network from SNAPSHOT_DIR/<net>-latest.npz when it exists",
    )
    p.add_argument("--config", type=Path, help="TOML settings file (flags and env win)")
    p.add_argument(
        "--broker",
        action="append",
        metavar="URL",
        help="mqtt://[user:pass@]host[:port], mqtts://… (TLS), ws://, wss://, 'embedded' "
        "(in-process broker) or 'auto' (localhost:1883 if it answers, else embedded; the "
        "default). Several URLs (repeat the flag, or separate them with commas) name the nodes "
        "of one clustered broker: the service connects to the first that answers and fails "
        "over to the next when it loses its node. Credentials may also come from "
        "SPIKESTREAM_MQTT_USERNAME / _PASSWORD / _PASSWORD_FILE",
    )
    p.add_argument("--tls-ca", type=Path, help="CA bundle to verify the broker (mqtts://)")
    p.add_argument("--tls-cert", type=Path, help="client certificate (mqtts://)")
    p.add_argument("--tls-key", type=Path, help="client private key (mqtts://)")
    p.add_argument("--prefix", help="topic prefix (default: spikestream)")
    p.add_argument(
        "--realtime-factor",
        type=float,
        help="1 = real time (default), 2 = twice as fast, 0 = as fast as possible",
    )
    p.add_argument(
        "--overrun",
        choices=("catch-up", "skip", "slip"),
        help="when a tick is late: catch-up (burst, capped by --max-catchup; default), "
        "skip (drop ticks to realign, counted) or slip (move the schedule)",
    )
    p.add_argument("--max-catchup", type=count_arg, help="most late ticks run in one burst (20)")
    p.add_argument(
        "--ticks-per-frame",
        type=count_arg,
        help="ticks per output frame for every probe "
        "(default: each probe's ticks_per_frame in the network file); bounded by the "
        "memory budget",
    )
    p.add_argument(
        "--queue-capacity",
        type=count_arg,
        help="frames queued per probe (256); bounded by the memory budget",
    )
    p.add_argument(
        "--queue-policy",
        choices=("drop-oldest", "coalesce"),
        help="when a probe's queue is full: drop-oldest (default) or coalesce frames",
    )
    p.add_argument("--qos", type=int, choices=(0, 1, 2), help="QoS of output frames (0)")
    p.add_argument("--expiry", type=count_arg, help="MQTT 5 message expiry of frames, seconds")
    p.add_argument("--keepalive", type=count_arg, help="MQTT keepalive, seconds (10)")
    p.add_argument(
        "--backoff-max", type=float, help="longest reconnect delay, seconds (5; at most 600)"
    )
    p.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="refuse to start when the networks and their frame queues would allocate more "
        f"than SIZE bytes (e.g. 2GiB, 512MiB, 1.5GB); also bounds `set ticks_per_frame`. "
        f"Default: {DEFAULT_SHARE * 100:.0f}%% of physical memory (or of the container's limit)",
    )
    p.add_argument("--client-id", help="MQTT client id (default: spikestream-<net>-<pid>)")
    p.add_argument("--dtype", choices=("float64", "float32"), help="state number type")
    p.add_argument("--seed", type=int, help="override the network file's seed")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (off)")
    p.add_argument("--metrics-host", help="address for --metrics-port (127.0.0.1)")
    p.add_argument(
        "--snapshot-dir",
        type=Path,
        help="the folder snapshot and restore commands name files in, created with mode 0700 "
        "when missing (default: $XDG_STATE_HOME/spikestream/snapshots, else "
        "~/.local/state/spikestream/snapshots; never the working directory)",
    )
    p.add_argument(
        "--restore",
        type=Path,
        help="start from this snapshot file (validated against the network; refused with "
        "one line if it does not fit)",
    )
    p.add_argument("--log-inputs", type=Path, help="record tick-stamped inputs for `run --replay`")
    p.add_argument("--stats-interval", type=float, help="seconds between stats messages (1)")
    # Debug only, for bench/floor.py: where input-to-output time goes.
    p.add_argument("--trace-latency", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--rt-priority",
        type=int,
        help="run each tick thread under SCHED_FIFO at this priority (1-99; Linux, needs "
        "CAP_SYS_NICE or root; 0 = normal scheduling, the default)",
    )
    p.add_argument(
        "--cpu-latency",
        type=int,
        metavar="US",
        help="hold a CPU wake-up latency limit of US microseconds (Linux PM QoS, "
        "/dev/cpu_dma_latency; needs root or a udev rule) while serving: 0 keeps idle CPUs "
        "polling instead of halting, so sleeping ticks wake on time in a VM, at the cost of "
        "busy idle CPUs machine-wide (default: no request)",
    )
    p.add_argument(
        "--spin",
        type=float,
        help="seconds the tick thread busy-waits before each deadline after sleeping "
        "(0.0002): longer costs CPU, shorter lets sleep's wake-up jitter make ticks late",
    )
    p.add_argument(
        "--switch-interval",
        type=float,
        help="Python's GIL switch interval in seconds (0.0005): how long the I/O thread can "
        "hold the interpreter before the tick thread gets it back",
    )
    p.add_argument(
        "--text-rate",
        type=float,
        metavar="HZ",
        help=f"also publish each value probe of at most {MAX_TEXT_DIM} numbers per tick on "
        "<prefix>/<net>/text/<probe> as plain text (a decimal, or a JSON array), at most HZ "
        f"times a second (0 < HZ <= {MAX_TEXT_RATE:g}; off by default)",
    )
    p.add_argument(
        "--ha-discovery",
        nargs="?",
        const=DEFAULT_HA_PREFIX,
        metavar="PREFIX",
        help="publish retained Home Assistant MQTT discovery configs for the text values "
        f"under PREFIX (default {DEFAULT_HA_PREFIX}), again whenever PREFIX/status says "
        f"online; implies --text-rate {DEFAULT_TEXT_RATE:g} unless given",
    )
    add_python_functions_flag(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Load everything, then serve until SIGTERM or SIGINT. Returns the exit code."""
    names = [
        "broker",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "prefix",
        "realtime_factor",
        "overrun",
        "max_catchup",
        "ticks_per_frame",
        "queue_capacity",
        "queue_policy",
        "qos",
        "expiry",
        "keepalive",
        "backoff_max",
        "client_id",
        "dtype",
        "seed",
        "metrics_port",
        "metrics_host",
        "snapshot_dir",
        "restore",
        "log_inputs",
        "trace_latency",
        "stats_interval",
        "snapshot_every",
        "shard",
        "rt_priority",
        "switch_interval",
        "spin",
        "cpu_latency",
        "memory_limit",
        "text_rate",
        "ha_discovery",
    ]
    flags = {n: getattr(args, n, None) for n in names}
    if isinstance(flags["broker"], list):  # --broker given several times
        flags["broker"] = ",".join(flags["broker"])
    flags["resume"] = True if args.resume else None
    flags["allow_python_functions"] = True if args.allow_python_functions else None
    settings = load_settings(flags, args.config)
    files = select_shard(list(args.networks), settings.shard)
    if len(files) > 1 and (settings.restore is not None or settings.log_inputs is not None):
        raise ConfigError(
            "--restore and --log-inputs take one network; use --resume to "
            "restore several from SNAPSHOT_DIR/<net>-latest.npz"
        )
    specs = [load_network_or_model(f) for f in files]
    limit = settings.memory_limit if settings.memory_limit is not None else default_limit()
    estimates = check_serve_budget(files, specs, settings, limit)
    models = [
        build(
            spec,
            dtype=settings.dtype,
            seed=settings.seed,
            allow_python_functions=settings.allow_python_functions,
        )
        for spec in specs
    ]
    names_seen = [m.name for m in models]
    dup = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if dup:
        raise ConfigError(
            f"two network files share the network name {dup[0]!r}; each "
            "network served by one process needs its own name"
        )
    brokers = tuple(
        with_env_credentials(spec, os.environ)
        for spec in parse_broker_list(
            settings.broker,
            ca_file=settings.tls_ca,
            cert_file=settings.tls_cert,
            key_file=settings.tls_key,
        )
    )
    # A shorter switch interval bounds how long the I/O thread can hold the GIL from the
    # tick thread (DESIGN.md section 4: p99.9 lateness 1.7 ms -> 0.7 ms).
    sys.setswitchinterval(settings.switch_interval)
    if settings.rt_priority > 0:
        # The I/O thread holds the GIL the tick thread needs: if an ordinary process could
        # preempt it, the tick thread would wait behind that process (priority inversion).
        # So the I/O side runs one step below the tick thread, and above everything else.
        from spikestream.runtime.priority import raise_priority

        raise_priority(max(1, settings.rt_priority - 1))
    cpu_latency = None
    if settings.cpu_latency is not None:
        from spikestream.runtime.cpulatency import CpuLatencyRequest

        cpu_latency = CpuLatencyRequest(settings.cpu_latency)
    options = ServiceOptions(
        prefix=settings.prefix,
        realtime_factor=settings.realtime_factor,
        overrun=settings.overrun,
        max_catchup=settings.max_catchup,
        ticks_per_frame=settings.ticks_per_frame,
        queue_capacity=settings.queue_capacity,
        queue_policy=settings.queue_policy,
        qos=settings.qos,
        expiry=settings.expiry,
        keepalive=settings.keepalive,
        backoff_min=settings.backoff_min,
        backoff_max=settings.backoff_max,
        client_id=settings.client_id,
        max_input_bytes=settings.max_input_bytes,
        stats_interval=settings.stats_interval,
        snapshot_dir=settings.snapshot_dir,
        snapshot_every=settings.snapshot_every,
        resume=settings.resume,
        restore=settings.restore,
        rt_priority=settings.rt_priority,
        spin=settings.spin,
        cpu_latency=cpu_latency,
        trace_latency=settings.trace_latency,
        text_rate=settings.text_rate,
        ha_discovery=settings.ha_discovery,
    )
    # Each network may grow (``set ticks_per_frame``) into what the others leave free.
    total = sum(estimates)
    per_model = [
        dataclasses.replace(options, memory_limit=limit - (total - own)) for own in estimates
    ]
    # Everything built so far (modules, models, compiled kernels) lives for the whole run:
    # freeze it out of the collector's reach, so a full collection triggered by the I/O
    # side's garbage scans a few thousand objects instead of ~10^5 while holding the GIL
    # that the tick thread needs (full collections were ~10-20 ms tick stalls).
    gc.collect()
    gc.freeze()
    # A latency request is held for the whole run and dropped on exit: the kernel forgets
    # it when the file closes, so even a crash cannot leave the machine polling.
    with cpu_latency if cpu_latency is not None else contextlib.nullcontext():
        asyncio.run(_serve(models, brokers, per_model, settings))
    return 0


def check_serve_budget(
    files: list[Path], specs: list[NetworkSpec], settings: ServeSettings, limit: int
) -> list[int]:
    """Estimate each network's bytes under ``settings``; refuse all over ``limit``.

    Returns:
        Each network's estimate in bytes.

    Raises:
        MemoryBudgetError: one line naming what was asked, the estimate and the limit.
    """
    estimates = [
        estimate_serve(
            spec,
            dtype=settings.dtype,
            ticks_per_frame=settings.ticks_per_frame,
            queue_capacity=settings.queue_capacity,
            queue_policy=settings.queue_policy,
        )
        for spec in specs
    ]
    asked = (
        f"serving {', '.join(str(f) for f in files)} with ticks_per_frame="
        f"{settings.ticks_per_frame or 'from the file'}, queue_capacity="
        f"{settings.queue_capacity} ({settings.queue_policy})"
    )
    merged = estimates[0]
    if len(estimates) > 1:
        merged = Estimate({})
        for spec, est in zip(specs, estimates, strict=True):
            merged = merged.merged(f"{spec.name}: ", est)
    check_budget(asked, merged, limit)
    return [e.total for e in estimates]


def select_shard(files: list[Path], shard: str | None, hostname: str | None = None) -> list[Path]:
    """The files of shard ``INDEX/COUNT`` (position ``i`` with ``i % COUNT == INDEX``).

    Raises:
        ConfigError: a malformed shard, or a shard with no network.
    """
    if shard is None:
        return files
    index_text, sep, count_text = shard.partition("/")
    if index_text == "auto":
        import re
        import socket

        host = hostname if hostname is not None else socket.gethostname()
        match = re.search(r"-(\d+)$", host)
        if match is None:
            raise ConfigError(
                f"--shard auto/COUNT needs a host name ending in -<ordinal>; got {host!r}"
            )
        index_text = match.group(1)
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"--shard must be INDEX/COUNT with 0 <= INDEX < COUNT (or auto/COUNT); got {shard!r}"
        )
    chosen = [f for i, f in enumerate(files) if i % count == index]
    if not chosen:
        raise ConfigError(f"shard {index}/{count} of {len(files)} network(s) is empty")
    return chosen


@contextlib.asynccontextmanager
async def resolve_brokers(brokers: tuple[BrokerSpec, ...]) -> AsyncIterator[tuple[BrokerSpec, ...]]:
    """Concrete brokers for ``brokers``: one broker may be ``embedded``/``auto`` (resolved,
    and an embedded broker run, for the block); a list holds URLs only (checked when
    parsed), which are used as they are."""
    if len(brokers) > 1:
        yield brokers
        return
    async with resolve_broker(brokers[0]) as concrete:
        yield (concrete,)


async def _serve(
    models: list[Any],
    brokers: tuple[BrokerSpec, ...],
    options: list[ServiceOptions],
    settings: ServeSettings,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with resolve_brokers(brokers) as concrete:
        log.info(
            "broker",
            extra={"requested": redacted_list(brokers), "using": redacted_list(concrete)},
        )
        services = [
            Service(model, concrete, opts) for model, opts in zip(models, options, strict=True)
        ]
        recorder = None
        spooler: asyncio.Task[None] | None = None
        if settings.log_inputs is not None:
            from spikestream.runtime.replay import InputRecorder

            recorder = InputRecorder(models[0], settings.log_inputs)
            services[0].engine.input_log = recorder
            spooler = asyncio.create_task(_spool_inputs(recorder), name="spool-inputs")
        metrics = None
        if settings.metrics_port is not None:
            from spikestream.cli.metrics import start_metrics

            metrics = start_metrics(services, settings.metrics_host, settings.metrics_port)
            log.info(
                "metrics", extra={"url": f"http://{settings.metrics_host}:{metrics.port}/metrics"}
            )
        try:
            async with asyncio.TaskGroup() as tg:
                for service in services:
                    tg.create_task(service.run(stop), name=f"serve-{service.model.name}")
        finally:
            if metrics is not None:
                metrics.shutdown()
            if spooler is not None:
                spooler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await spooler
            if recorder is not None and settings.log_inputs is not None:
                recorder.save(ticks=services[0].engine.executed)
                log.info("inputs logged", extra={"path": str(settings.log_inputs)})


async def _spool_inputs(recorder: Any) -> None:
    """Move recorded input changes to the spool every ``SPOOL_INTERVAL`` s (off the tick
    thread, file writes in a worker thread), so memory does not grow with the run."""
    from spikestream.runtime.replay import SPOOL_INTERVAL

    while True:
        await asyncio.sleep(SPOOL_INTERVAL)
        try:
            await asyncio.to_thread(recorder.flush)
        except OSError as err:
            # The changes stay in memory and are retried on the next flush.
            log.error("cannot spool logged inputs", extra={"error": str(err)})
