"""Serving networks in one process: load, check the memory budget, build, then run one
:class:`~spikestream.serving.service.Service` per network until SIGTERM or SIGINT.

``spikestream serve`` (:mod:`spikestream.cli.serve`) parses its flags into
:class:`~spikestream.serving.settings.ServeSettings` and calls :func:`serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from spikestream.budget import (
    Estimate,
    check_budget,
    check_frame_sizes,
    default_limit,
    estimate_serve,
)
from spikestream.build import build
from spikestream.errors import ConfigError
from spikestream.nengo_import import load_network_or_model
from spikestream.runtime.cpulatency import CpuLatencyRequest
from spikestream.serving.service import Service
from spikestream.serving.settings import ServeSettings
from spikestream.spec import NetworkSpec
from spikestream.transport import resolve_broker
from spikestream_client.files import same_file
from spikestream_client.transport import (
    BrokerSpec,
    parse_broker_list,
    redacted_list,
    with_env_credentials,
)

log = logging.getLogger("spikestream.serve")


def _check_output_reads_nothing(
    log: Path, files: list[Path], settings: ServeSettings, flag: str = "--log-inputs"
) -> None:
    """Refuse an output written at shutdown (``flag``: ``--log-inputs``,
    ``--trace-latency``) that names a file serve reads: the network file (or Nengo
    script) or the ``--restore`` snapshot, which the output replaced; or lies in the
    snapshot folder when ``--resume`` reads it (its ``<net>-latest.npz``) or periodic
    snapshots are written there.

    Raises:
        ConfigError: naming the flag, both paths and what was expected.
    """
    from spikestream.nengo_import import is_model_script, split_source

    reads = [
        ("the Nengo script", split_source(str(f))[0])
        if is_model_script(f)
        else ("the network file", Path(f))
        for f in files
    ]
    if settings.restore is not None:
        reads.append(("the --restore snapshot", Path(settings.restore)))
    for name, src in reads:
        if same_file(Path(log), src):
            raise ConfigError(
                f"{flag} {str(log)!r} is {name} {str(src)!r}, which serve reads; "
                "expected a new file name"
            )
    if settings.resume or settings.snapshot_every is not None:
        from spikestream.serving.snapshots import default_snapshot_dir

        folder = settings.snapshot_dir or default_snapshot_dir()
        if same_file(Path(log).parent, folder):
            raise ConfigError(
                f"{flag} {str(log)!r} is in the snapshot folder {str(folder)!r}, "
                "which serve reads (--resume) and writes (--snapshot-every); expected a "
                "file elsewhere"
            )


def _check_output_reads_no_array(log: Path, spec: NetworkSpec, flag: str = "--log-inputs") -> None:
    """Refuse an output written at shutdown (``flag``) that is a file the network reads
    (its weights, encoders or signal samples), which the output replaced, as ``run``
    refuses such an ``--out``. Checked once the network is loaded, before it is built.

    Raises:
        ConfigError: naming the flag, both paths, the key that reads the file and what
            was expected.
    """
    from spikestream.datafiles import files_read

    for key, src in files_read(spec):
        if same_file(Path(log), src):
            raise ConfigError(
                f"{flag} {str(log)!r} is {str(src)!r}, which the network reads "
                f"({spec.source}: {key}); expected a new file name"
            )


def serve(networks: list[Path], settings: ServeSettings) -> int:
    """Serve the network files ``networks`` (those of ``settings.shard``) until SIGTERM or
    SIGINT. Returns the exit code.

    Raises:
        SpikestreamError: a user error (a bad file or setting, a budget refused, an
            unreachable broker), as one line.
    """
    files = select_shard(list(networks), settings.shard)
    if len(files) > 1 and (settings.restore is not None or settings.log_inputs is not None):
        raise ConfigError(
            "--restore and --log-inputs take one network; use --resume to "
            "restore several from SNAPSHOT_DIR/<net>-latest.npz"
        )
    if settings.log_inputs is not None:
        # Before anything is built or connected: a target the log cannot be saved to
        # would otherwise fail only at shutdown, losing the run's log.
        from spikestream.runtime.replay import check_log_target

        check_log_target(settings.log_inputs)
        _check_output_reads_nothing(settings.log_inputs, files, settings)
    if settings.trace_latency is not None:
        # As for --log-inputs: a target the trace cannot be saved to failed only at exit.
        from spikestream.runtime.trace import check_trace_target

        check_trace_target(settings.trace_latency)
        # Written at exit to the name given: it replaced the network file so named.
        _check_output_reads_nothing(settings.trace_latency, files, settings, "--trace-latency")
        if settings.log_inputs is not None and same_file(
            Path(settings.trace_latency), Path(settings.log_inputs)
        ):
            raise ConfigError(
                f"--trace-latency and --log-inputs both name {str(settings.trace_latency)!r}; "
                "expected two files"
            )
    specs = [load_network_or_model(f) for f in files]
    if settings.log_inputs is not None:
        _check_output_reads_no_array(settings.log_inputs, specs[0])
    if settings.trace_latency is not None:
        for spec in specs:
            _check_output_reads_no_array(settings.trace_latency, spec, "--trace-latency")
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

        raise_priority(max(1, settings.rt_priority - 1), thread="I/O thread")
    cpu_latency = None
    if settings.cpu_latency is not None:
        cpu_latency = CpuLatencyRequest(settings.cpu_latency)
    # Each network may grow (``set ticks_per_frame``) into what the others leave free.
    total = sum(estimates)
    limits = [limit - (total - own) for own in estimates]
    # Everything built so far (modules, models, compiled kernels) lives for the whole run:
    # freeze it out of the collector's reach, so a full collection triggered by the I/O
    # side's garbage scans a few thousand objects instead of ~10^5 while holding the GIL
    # that the tick thread needs (full collections were ~10-20 ms tick stalls).
    gc.collect()
    gc.freeze()
    # A latency request is held for the whole run and dropped on exit: the kernel forgets
    # it when the file closes, so even a crash cannot leave the machine polling.
    with cpu_latency if cpu_latency is not None else contextlib.nullcontext():
        asyncio.run(_serve(models, brokers, limits, settings, cpu_latency))
    return 0


def check_serve_budget(
    files: list[Path], specs: list[NetworkSpec], settings: ServeSettings, limit: int
) -> list[int]:
    """Estimate each network's bytes under ``settings``; refuse all over ``limit``, and
    any whose frames would be larger than a client decodes.

    Returns:
        Each network's estimate in bytes.

    Raises:
        MemoryBudgetError: one line naming what was asked, the estimate and the limit.
        ConfigError: a probe's frames past the protocol's 16 MiB.
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
    frames = (
        f"ticks_per_frame={settings.ticks_per_frame}"
        if settings.ticks_per_frame
        else "each probe's ticks_per_frame from the file"
    )
    asked = (
        f"serving {', '.join(str(f) for f in files)} with {frames}, queue_capacity="
        f"{settings.queue_capacity} ({settings.queue_policy})"
    )
    merged = estimates[0]
    if len(estimates) > 1:
        merged = Estimate({})
        for spec, est in zip(specs, estimates, strict=True):
            merged = merged.merged(f"{spec.name}: ", est)
    check_budget(asked, merged, limit)
    # After the budget: a frame too big for the memory is first of all too big for it.
    for spec in specs:
        check_frame_sizes(
            spec, ticks_per_frame=settings.ticks_per_frame, queue_policy=settings.queue_policy
        )
    return [e.total for e in estimates]


def select_shard(files: list[Path], shard: str | None, hostname: str | None = None) -> list[Path]:
    """The files of shard ``INDEX/COUNT`` (position ``i`` with ``i % COUNT == INDEX``).

    Raises:
        ConfigError: a malformed shard, or a shard with no network.
    """
    if shard is None:
        return files
    index_text, sep, count_text = shard.partition("/")
    source = ""  # where INDEX came from, when not from the flag itself
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
        source = f", whose INDEX {index_text} is the ordinal of the host name {host!r}"
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise ConfigError(
            "--shard must be INDEX/COUNT with 0 <= INDEX < COUNT (or auto/COUNT); got "
            f"{shard!r}{source}"
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
    limits: list[int],
    settings: ServeSettings,
    cpu_latency: CpuLatencyRequest | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed terminal or a lost SSH session killed the process in place,
    # without its own offline, and lost the --log-inputs file. A signal the process was
    # started ignoring (nohup) stays ignored: that was asked for.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            loop.add_signal_handler(sig, stop.set)
    async with resolve_brokers(brokers) as concrete:
        log.info(
            "broker",
            extra={"requested": redacted_list(brokers), "using": redacted_list(concrete)},
        )
        services = [
            Service(model, concrete, settings, memory_limit=own, cpu_latency=cpu_latency)
            for model, own in zip(models, limits, strict=True)
        ]
        # Metrics first: an address that cannot be bound is refused (ConfigError) before
        # the input log's spool folder exists, so a refusal leaves nothing behind.
        metrics = None
        if settings.metrics_port is not None:
            from spikestream.serving.metrics import start_metrics

            metrics = start_metrics(
                [s.statistics for s in services],
                settings.metrics_host,
                settings.metrics_port,
                routes=(settings.route("metrics_host"), settings.route("metrics_port")),
            )
            log.info(
                "metrics", extra={"url": f"http://{settings.metrics_host}:{metrics.port}/metrics"}
            )
        recorder = None
        spooler: asyncio.Task[None] | None = None
        try:
            if settings.log_inputs is not None:
                from spikestream.runtime.replay import InputRecorder

                recorder = InputRecorder(models[0], settings.log_inputs)
                services[0].engine.input_log = recorder
                spooler = asyncio.create_task(_spool_inputs(recorder), name="spool-inputs")
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
