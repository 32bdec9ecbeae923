"""The ``serve`` settings, declared once.

:class:`ServeSettings` is the only list of them: each field has its type, default, bounds
and description. Everything else is derived from it by code:

* the command-line flag ``--<name-with-dashes>`` (:func:`add_setting_flags`), its help
  text from the description (``{default}`` in it becomes the field's default), its
  choices from a ``Literal`` type and its argparse type from the field's type;
* the environment variable ``SPIKESTREAM_<NAME>`` (pydantic-settings, ``env_prefix``);
* the key ``<name>`` of the TOML settings file (``--config``).

Sources, highest priority first: flags, environment, settings file, defaults
(:func:`load_settings`). The service (:class:`~spikestream.serving.service.Service`) takes
the model itself.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from spikestream.budget import DEFAULT_SHARE, SIZE_RULE, parse_bytes
from spikestream.errors import CodecError, ConfigError
from spikestream.flaghelp import ALLOW_PYTHON_FUNCTIONS_HELP
from spikestream.serving.discovery import DEFAULT_HA_PREFIX
from spikestream.serving.text import DEFAULT_TEXT_RATE, MAX_TEXT_DIM, MAX_TEXT_RATE
from spikestream.spec import parse_toml, read_text_file
from spikestream_client.codec import MAX_REALTIME_FACTOR, validate_prefix
from spikestream_client.transport.urls import (
    ENV_PASSWORD,
    ENV_PASSWORD_FILE,
    ENV_USERNAME,
    FALSE_WORDS,
    TRUE_WORDS,
)

#: The prefix of every setting's environment variable.
ENV_PREFIX = "SPIKESTREAM_"

#: A network argument (``x.toml``, ``model.py`` or ``model.py:NAME``), never a topic prefix.
_NETWORK_FILE = re.compile(r"\.(toml|py)(:[^/]*)?$", re.IGNORECASE)


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


_INTEGRAL = BeforeValidator(integral)

#: An integer setting that may be written ``1e6``.
Count = Annotated[int, _INTEGRAL]


def _thread_count_text(value: object) -> object:
    """A config file's ``tick_threads = 2`` as the choice ``"2"`` (flags and the
    environment give text already)."""
    return str(value) if type(value) is int else value


#: ``--tick-threads``: ``auto``, ``1`` or ``2`` (see the field).
TickThreads = Annotated[Literal["auto", "1", "2"], BeforeValidator(_thread_count_text)]


def _flag(
    *,
    metavar: str | None = None,
    append: bool = False,
    const: str | None = None,
    text: bool = False,
) -> dict[str, Any]:
    """How a field's flag differs from the derived default, kept with the field
    (``json_schema_extra``): a ``metavar``, ``append`` (the flag may be repeated; the
    values are joined with commas), ``const`` (the flag's value may be left out) or
    ``text`` (the value goes to the model as text, for its own validator to parse)."""
    out: dict[str, Any] = {}
    if text:
        out["text"] = True
    if metavar is not None:
        out["metavar"] = metavar
    if append:
        out["append"] = True
    if const is not None:
        out["const"] = const
    return out


class ServeSettings(BaseSettings):
    """Every ``serve`` setting. Environment: ``SPIKESTREAM_<NAME>`` (e.g.
    ``SPIKESTREAM_BROKER=mqtt://host:1883``); settings file: ``<name> = ...``; flag:
    ``--<name-with-dashes>``.

    Every number is finite (``allow_inf_nan=False``) and in a stated range; the sizes that
    allocate (``ticks_per_frame``, ``queue_capacity``) are bounded by ``memory_limit``
    through the memory budget, checked before anything is built. A description of
    ``None`` hides the flag from ``--help`` (debug settings).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", allow_inf_nan=False)

    # Where each setting's value came from (load_settings fills it): a refusal found later,
    # a metrics port in use say, names the route that held the value.
    _routes: dict[str, str] = PrivateAttr(default_factory=dict)

    def route(self, field: str) -> str:
        """Where setting ``field`` came from: its flag, its ``SPIKESTREAM_*`` variable (as
        written), ``settings file '...'``, or ``its default``."""
        return self._routes.get(field, "its default")

    # The fields are in the order --help lists their flags.
    shard: str | None = Field(
        None,
        description="INDEX/COUNT: serve only the networks whose position i (in the order "
        "given) has i % COUNT == INDEX; INDEX may be 'auto' to take the ordinal at the end of "
        "the host name (a Kubernetes StatefulSet pod, e.g. spikestream-2); default: every "
        "network",
    )
    snapshot_every: float | None = Field(
        None,
        ge=0.1,  # each snapshot copies the whole state on the tick thread
        le=1e6,
        description="write each network's state to SNAPSHOT_DIR/<net>-latest.npz every S "
        "seconds (0.1 or more; default: off)",
        json_schema_extra=_flag(metavar="S"),
    )
    resume: bool = Field(
        False,
        description="start each network from SNAPSHOT_DIR/<net>-latest.npz when it exists",
    )
    broker: str = Field(
        "auto",
        description="mqtt://[user:pass@]host[:port], mqtts://… (TLS), ws://, wss://, "
        "'embedded' (in-process broker) or 'auto' (localhost:1883 if it answers, else "
        "embedded; the default). Several URLs (repeat the flag, or separate them with "
        "commas) name the nodes of one clustered broker: the service connects to the first "
        "that answers and fails over to the next when it loses its node. Credentials may "
        "also come from SPIKESTREAM_MQTT_USERNAME / _PASSWORD / _PASSWORD_FILE",
        json_schema_extra=_flag(metavar="URL", append=True),
    )
    tls_ca: Path | None = Field(None, description="CA bundle to verify the broker (mqtts://)")
    tls_cert: Path | None = Field(None, description="client certificate (mqtts://)")
    tls_key: Path | None = Field(None, description="client private key (mqtts://)")
    prefix: str = Field("spikestream", description="topic prefix (default: {default})")
    realtime_factor: float = Field(
        1.0,
        ge=0,
        le=MAX_REALTIME_FACTOR,
        description="1 = real time (default), 2 = twice as fast, 0 = as fast as possible; "
        f"at most {MAX_REALTIME_FACTOR:g}",
    )
    overrun: Literal["catch-up", "skip", "slip"] = Field(
        "catch-up",
        description="when a tick is late: catch-up (burst, capped by --max-catchup; "
        "default), skip (drop ticks to realign, counted) or slip (move the schedule)",
    )
    max_catchup: Count = Field(
        20, ge=1, le=1_000_000, description="most late ticks run in one burst ({default})"
    )
    ticks_per_frame: Count | None = Field(
        None,
        ge=1,
        description="ticks per output frame for every probe (default: each probe's "
        "ticks_per_frame in the network file); bounded by the memory budget",
    )
    queue_capacity: Count = Field(
        256,
        ge=1,
        description="frames queued per probe ({default}); bounded by the memory budget",
    )
    queue_policy: Literal["drop-oldest", "coalesce"] = Field(
        "drop-oldest",
        description="when a probe's queue is full: drop-oldest (default) or coalesce frames",
    )
    # As a count, so the environment's text "1" is the QoS 1 (a bare Literal refused it).
    qos: Annotated[Literal[0, 1, 2], _INTEGRAL] = Field(
        0, description="QoS of output frames ({default})"
    )
    expiry: Count | None = Field(
        None,
        ge=1,
        le=2**32 - 1,  # MQTT: a four-byte interval
        description="MQTT 5 message expiry of frames, seconds (default: none)",
    )
    keepalive: Count = Field(10, ge=1, le=65535, description="MQTT keepalive, seconds ({default})")
    backoff_min: float = Field(
        0.2,
        gt=0,
        le=600,
        description="smallest reconnect delay, seconds ({default:g}); later delays grow, "
        "jittered, up to --backoff-max",
    )
    backoff_max: float = Field(
        5.0,
        gt=0,
        le=600,
        description="longest reconnect delay, seconds ({default:g}; at most 600)",
    )
    memory_limit: int | None = Field(
        None,
        description="refuse to start when the networks and their frame queues would "
        "allocate more than SIZE bytes (e.g. 2GiB, 512MiB, 1.5GB); also bounds `set "
        f"ticks_per_frame`. Default: {DEFAULT_SHARE * 100:.0f}% of physical memory (or of "
        "the container's limit)",
        json_schema_extra=_flag(metavar="SIZE", text=True),
    )
    client_id: str | None = Field(
        None, description="MQTT client id (default: spikestream-<net>-<pid>)"
    )
    dtype: Literal["float64", "float32"] | None = Field(
        None, description="number type of the state (default: the file's network.dtype, float64)"
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="override the network file's random seed (>= 0)"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus metrics on this port (off)"
    )
    metrics_host: str = Field("127.0.0.1", description="address for --metrics-port ({default})")
    # None: $XDG_STATE_HOME/spikestream/snapshots (serving.snapshots.default_snapshot_dir)
    snapshot_dir: Path | None = Field(
        None,
        description="the folder snapshot and restore commands name files in, created with "
        "mode 0700 when missing (default: $XDG_STATE_HOME/spikestream/snapshots, else "
        "~/.local/state/spikestream/snapshots; never the working directory)",
    )
    restore: Path | None = Field(
        None,
        description="start from this snapshot file (validated against the network; refused "
        "with one line if it does not fit)",
    )
    log_inputs: Path | None = Field(
        None, description="record tick-stamped inputs for `run --replay`"
    )
    stats_interval: float = Field(
        1.0, ge=0.01, le=3600, description="seconds between stats messages ({default:g})"
    )
    status_refresh: float = Field(
        30.0,
        ge=0,
        le=86400,
        description="seconds between publishing the retained describe document and status "
        "`online` again while connected ({default:g}; 0: only at each connection), so that "
        "a broker left holding an old copy (a cluster node restarted from a stale replica) "
        "comes to agree",
    )
    # For bench/floor.py: input-to-output timestamps (runtime.trace).
    trace_latency: Path | None = Field(
        None,
        description="debugging: write the wall times at each step of an input's way to "
        "its frames (decoded, applied, published) to this .npz at exit, for "
        "bench/floor.py's breakdown (default: off)",
    )
    rt_priority: int = Field(
        0,
        ge=0,
        le=99,
        description="run each tick thread under SCHED_FIFO at this priority (1-99; Linux, "
        "needs CAP_SYS_NICE or root; 0 = normal scheduling, the default)",
    )
    tick_slice: float = Field(
        0.0001,
        ge=0,
        le=0.1,
        description="ask the kernel for a scheduling slice of S seconds for the tick thread "
        "({default:g}; Linux 6.12+, no privilege needed; 0 keeps the kernel's default of "
        "about 1.5 ms): woken at its deadline, the tick thread then preempts the I/O "
        "thread, the broker or a neighbour instead of waiting for its slice to end",
        json_schema_extra=_flag(metavar="S"),
    )
    io_nice: int = Field(
        0,
        ge=0,
        le=19,
        description="raise the I/O thread's nice value by N once the tick thread runs (no "
        "privilege needed; the tick thread keeps its own): on a quiet machine the scheduler "
        "then wakes the tick thread first when both want a core, but beside CPU-bound "
        "processes the I/O thread gets less of a core and frames wait longer (default: 0)",
        json_schema_extra=_flag(metavar="N"),
    )
    cpu_latency: Count | None = Field(
        None,
        ge=0,
        le=2**31 - 1,  # the kernel's s32, in microseconds
        description="hold a CPU wake-up latency limit of US microseconds (Linux PM QoS, "
        "/dev/cpu_dma_latency; needs root or a udev rule) while serving: 0 keeps idle CPUs "
        "polling instead of halting, so sleeping ticks wake on time in a VM, at the cost of "
        "busy idle CPUs machine-wide (default: no request)",
        json_schema_extra=_flag(metavar="US"),
    )
    spin: float = Field(
        0.0002,
        ge=0,
        le=0.01,
        description="seconds the tick thread busy-waits before each deadline after "
        "sleeping ({default:g}; its timer slack is 1 ns, so the sleep ends when asked): "
        "shorter lets a wake-up from an idle CPU make ticks late; longer costs CPU and, "
        "past the 0.1 ms tick slice, lets CPU-bound neighbours preempt the waiting tick "
        "thread (0.00005 halved late ticks beside two of them on 2 cores); see --busy-spin",
    )
    busy_spin: float = Field(
        0.0,
        ge=0,
        le=0.01,
        description="seconds the tick thread busy-waits before each deadline while it is "
        "kept waiting for a CPU ({default:g}): every 100 ticks it reads its own run delay "
        "(Linux schedstat) and the host's idle time (/proc/stat); above 5 % of the time "
        "twice in a row with less than 35 % of the CPUs' time idle (steal aside), CPU-bound "
        "neighbours hold every core, no CPU idles (so there is no slow wake-up for a spin "
        "to cover) and "
        "spinning only costs the thread its turn, so it spins this instead of --spin, until "
        "30 readings in a row stay below 1 % or see idle CPUs; equal to --spin never "
        "adapts, nor does a tick in two stages (--tick-threads), whose thread also waits "
        "behind its own helper (compiled runs of ticks only)",
    )
    tick_threads: TickThreads = Field(
        "auto",
        description="threads that step each tick ({default}): 2 cuts the tick's program in "
        "two stages and runs the second on a helper thread while the tick thread starts the "
        "next tick (same results; each core streams half the weights: on 2 vCPUs a 150k "
        "chain held a real-time factor of 0.96-0.999 against 0.66-0.99 on one thread); "
        "auto uses 2 for a tick that "
        "references 12 MiB or more (about 75k float32 neurons in a decoded chain) when the "
        "process may run on 2 CPUs; 1 for small networks adds no hand-over latency "
        "(compiled runs of ticks only)",
    )
    pin_tick_threads: bool = Field(
        False,
        description="with two tick threads, pin the tick thread to its CPU and the helper "
        "to the others for each run of ticks, so each stage's arrays stay in one core's "
        "caches; by default both may run on any CPU this process may use. On a 2-vCPU VM "
        "pinning was mixed without I/O (bench/tickthreads.py) and worse served beside the "
        "I/O thread and the broker: a 150k chain was late 5.8 and 18.4 % pinned, 4.5 and "
        "3.6 % not (docs/PERFORMANCE.md)",
    )
    tick_at_deadline: bool = Field(
        False,
        description="start every tick at its deadline, even with a new input value "
        "waiting. By default the tick a new input arrives for starts at once, though never "
        "before the previous tick's deadline: the input waits for no tick (up to dt with "
        "this flag), and the simulation runs at most one tick ahead of the wall clock. "
        "Ticks without a new input keep their deadlines either way, so the rate is the same "
        "(--python-tick always starts ticks at their deadlines)",
    )
    switch_interval: float = Field(
        0.0005,
        gt=0,
        le=0.1,
        description="Python's GIL switch interval in seconds ({default:g}): how long the I/O "
        "thread can hold the interpreter before the tick thread gets it back",
    )
    python_tick: bool = Field(
        False,
        description="run each tick on the Python path instead of the compiled one, which "
        "waits for the deadline, applies the inputs and steps in one call without the GIL "
        "(the default wherever the whole tick compiles: no learning or forced-dense "
        "connections, and the C extension built); for comparison, the ticks are the same",
    )
    max_input_bytes: Count = Field(
        65536,
        ge=16,
        le=268_435_455,  # MQTT's largest packet
        description="largest input payload accepted, bytes ({default}); larger ones are "
        "refused (reason oversize)",
    )
    text_rate: float | None = Field(
        None,
        gt=0,
        le=MAX_TEXT_RATE,
        description=f"also publish each value probe of at most {MAX_TEXT_DIM} numbers per "
        "tick on <prefix>/<net>/text/<probe> as plain text (a decimal, or a JSON array), at "
        f"most HZ times a second (0 < HZ <= {MAX_TEXT_RATE:g}; off by default)",
        json_schema_extra=_flag(metavar="HZ"),
    )
    ha_discovery: str | None = Field(
        None,
        description="publish retained Home Assistant MQTT discovery configs for the text "
        f"values under PREFIX (default {DEFAULT_HA_PREFIX}; true, 1, yes or on mean it, "
        "false, 0, no or off turn discovery off), again whenever PREFIX/status says "
        f"online; implies --text-rate {DEFAULT_TEXT_RATE:g} unless given",
        json_schema_extra=_flag(metavar="PREFIX", const=DEFAULT_HA_PREFIX),
    )
    # Opt-in to code execution: function = "module:attr" imports and calls that module.
    allow_python_functions: bool = Field(
        False,
        description=ALLOW_PYTHON_FUNCTIONS_HELP,
    )

    def engine_options(self) -> dict[str, Any]:
        """The :class:`~spikestream.runtime.engine.Engine` keyword arguments these
        settings give (the network, its memory and the wake-up are the service's)."""
        # Imported here: ``serve --help`` builds its flags from these settings and
        # should not load the runtime (the pacer, the simulator and its extension).
        from spikestream.runtime.clock import SystemClock

        compiled = not self.python_tick
        return {
            "realtime_factor": self.realtime_factor,
            "policy": self.overrun,
            "max_catchup": self.max_catchup,
            "queue_capacity": self.queue_capacity,
            "queue_policy": self.queue_policy,
            "ticks_per_frame": self.ticks_per_frame,
            "rt_priority": self.rt_priority,
            "tick_slice": self.tick_slice,
            "clock": SystemClock(spin=self.spin),
            "busy_spin": self.busy_spin,
            "tick_threads": "auto" if self.tick_threads == "auto" else int(self.tick_threads),
            "pin_tick_threads": self.pin_tick_threads,
            "early_ticks": not self.tick_at_deadline,
            "compiled_tick": compiled,
            # The tick thread stays in compiled code across ticks; the publisher turns
            # the finished ticks into frames when the engine's wake_fd says so.
            "runs": compiled,
        }

    @model_validator(mode="after")
    def _backoff_ordered(self) -> ServeSettings:
        # Was taken, and the maximum quietly raised to the minimum.
        if self.backoff_min > self.backoff_max:
            raise ValueError(
                f"backoff_min ({self.backoff_min:g} s) must be at most backoff_max "
                f"({self.backoff_max:g} s)"
            )
        return self

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # A TOML ``true`` is a bool, which pydantic's lax mode takes as the number 1:
        # ``ticks_per_frame = true`` served with 1 tick per frame, unsaid.
        if isinstance(value, bool) and info.field_name is not None:
            annotation, _ = _unwrap(cls.model_fields[info.field_name].annotation)
            choices = get_args(annotation) if get_origin(annotation) is Literal else ()
            # A number, or a Literal of numbers (``qos``: True == 1 passed it).
            if annotation in (int, float) or any(type(c) in (int, float) for c in choices):
                raise ValueError("expected a number, not a boolean")
        return value

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

    @field_validator("status_refresh")
    @classmethod
    def _off_or_a_tenth(cls, value: float) -> float:
        # Anything shorter republishes two retained messages in a loop.
        if 0 < value < 0.1:
            raise ValueError("Input should be 0 (off) or at least 0.1 seconds")
        return value

    @field_validator("ha_discovery", mode="before")
    @classmethod
    def _ha_switch(cls, value: object) -> object:
        # From a variable or a settings file, a switch word (or a TOML boolean) turns
        # discovery on with HA's default prefix, or off: SPIKESTREAM_HA_DISCOVERY=true
        # announced under a prefix named "true", which HA never reads.
        if isinstance(value, bool):
            return DEFAULT_HA_PREFIX if value else None
        if isinstance(value, str):
            word = value.strip().lower()
            if word in TRUE_WORDS:
                return DEFAULT_HA_PREFIX
            if word in FALSE_WORDS:
                return None
        return value

    @field_validator("ha_discovery")
    @classmethod
    def _ha_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _NETWORK_FILE.search(value):
            # The flag's PREFIX is optional, so "--ha-discovery a.toml b.toml" took the
            # first network file as the prefix and served only the second.
            raise ValueError(
                f"{value!r:.80} names a network file, not a discovery prefix (on the "
                "command line, put --ha-discovery after the network files, or give its "
                "prefix as --ha-discovery=PREFIX)"
            )
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
        if _CONFIG_DATA[0] is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=_CONFIG_DATA[0]))
        return tuple(sources)


#: Largest settings file read, bytes: a settings file holds a few dozen short keys.
SETTINGS_FILE_MAX_BYTES = 1024 * 1024

# The parsed settings file the next ServeSettings() reads, set by load_settings():
# pydantic-settings builds its sources from the class, so the data travels beside it. The
# file is read and parsed here, not by pydantic-settings' TOML source, whose read has no
# size cap and whose parse errors escaped as tracebacks.
_CONFIG_DATA: list[dict[str, Any] | None] = [None]


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings file ``path`` parsed: a regular UTF-8 TOML file of at most
    :data:`SETTINGS_FILE_MAX_BYTES` bytes.

    Raises:
        ConfigError: ``settings file 'x.toml': <what is wrong>``.
    """
    label = f"settings file {str(path)!r}"
    if not path.exists():
        raise ConfigError(f"{label} does not exist")
    what = "settings file"
    text = read_text_file(path, label, SETTINGS_FILE_MAX_BYTES, what=what, error=ConfigError)
    return parse_toml(text, label, what=what, error=ConfigError)


#: ``SPIKESTREAM_*`` variables that are not settings but are read elsewhere; every other
#: one is refused (a misspelt setting would be ignored, while the settings file refuses
#: unknown keys).
OTHER_ENV_VARS = frozenset(
    {
        ENV_USERNAME,  # the broker's credentials (spikestream_client.transport.urls)
        ENV_PASSWORD,
        ENV_PASSWORD_FILE,
        "SPIKESTREAM_PROGRAMS",  # tick programs: auto, c or numba (spikestream.sim.native)
        "SPIKESTREAM_DECODER_CACHE",  # 0 turns the decoder cache off (spikestream.decodercache)
        # deploy/compose.yaml's broker password, exported in the shell that runs compose.
        "SPIKESTREAM_PASSWORD",
        # The test suite's own (tests/brokers.py, tests/clients/).
        "SPIKESTREAM_TEST_MOSQUITTO",
        "SPIKESTREAM_TEST_NATS",
        "SPIKESTREAM_TEST_CHROMIUM",
        "SPIKESTREAM_SCREENSHOT_DIR",
    }
)


#: What Kubernetes injects into every pod of a namespace holding a Service named
#: ``spikestream`` (service links: ``SPIKESTREAM_PORT``, ``SPIKESTREAM_SERVICE_HOST``,
#: ``SPIKESTREAM_PORT_9100_TCP_ADDR``...): not the user's, so never refused.
SERVICE_LINK = re.compile(r"SPIKESTREAM_(SERVICE_[A-Z0-9_]+|PORT(_[A-Z0-9_]+)?)")


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a ``SPIKESTREAM_*`` variable that is neither a setting nor one of
    :data:`OTHER_ENV_VARS`, naming the closest valid names. Names are compared without
    case, as pydantic-settings reads them.

    Raises:
        ConfigError: one line naming the variable and the names it may have meant.
    """
    settings = {env_name(name) for name, _ in _fields()}
    valid = settings | OTHER_ENV_VARS
    for key in sorted(environ):
        name = key.upper()
        if not name.startswith(ENV_PREFIX) or name in valid or SERVICE_LINK.fullmatch(name):
            continue
        # Compared without the shared prefix, which would make every name look close.
        tails = {v.removeprefix(ENV_PREFIX): v for v in sorted(valid)}
        tail = name.removeprefix(ENV_PREFIX)
        close = [tails[t] for t in difflib.get_close_matches(tail, tails, n=3, cutoff=0.7)]
        # The value is not shown: a misspelt password variable holds a secret.
        meant = " or ".join([", ".join(close[:-1]), close[-1]] if len(close) > 1 else close)
        hint = f" (did you mean {meant}?)" if close else ""
        raise ConfigError(
            f"unknown environment variable {key}{hint}: expected SPIKESTREAM_<SETTING> for "
            f"a setting of `spikestream serve --help`, or {ENV_USERNAME}, {ENV_PASSWORD} or "
            f"{ENV_PASSWORD_FILE}"
        )


def load_settings(flags: dict[str, Any], config_file: Path | None) -> ServeSettings:
    """Merge flags (given, non-None), environment and the settings file.

    Raises:
        ConfigError: naming the setting, its value and what is allowed, or an unknown
            ``SPIKESTREAM_*`` variable.
    """
    check_environment(os.environ)
    data = read_settings_file(config_file) if config_file is not None else None
    _CONFIG_DATA[0] = data
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        settings = ServeSettings(**given)
        settings._routes = {f: _source(f, given, data, config_file) for f, _ in _fields()}
        return settings
    except ValidationError as err:
        # One line: each bad setting with where it came from, its value and what is
        # allowed.
        problems = []
        for e in err.errors(include_url=False):
            key = ".".join(str(p) for p in e["loc"])
            msg = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":  # a settings file's unknown key
                names = [name for name, _ in _fields()]
                close = difflib.get_close_matches(key, names, n=3, cutoff=0.7)
                hint = f" (did you mean {' or '.join(close)}?)" if close else ""
                msg = f"not a setting{hint}; the settings are those of `spikestream serve --help`"
            # A check across settings has no key, and its message names the values.
            route = _source(str(e["loc"][0]), given, data, config_file) if key else ""
            where, got = (
                (f"{key} (from {route}): ", f" (got {e.get('input')!r:.60})") if key else ("", "")
            )
            problems.append(f"{where}{msg}{got}")
        raise ConfigError("invalid serve setting: " + "; ".join(problems)) from None
    finally:
        _CONFIG_DATA[0] = None


def _source(
    field: str, flags: Mapping[str, Any], data: Mapping[str, Any] | None, config_file: Path | None
) -> str:
    """Where setting ``field``'s value came from, in the order the sources take
    precedence (ServeSettings.settings_customise_sources): its flag, its environment
    variable (named as it was written: pydantic-settings ignores case), or the settings
    file."""
    if field in flags:
        return flag_name(field)
    wanted = env_name(field)
    for name in os.environ:
        if name.upper() == wanted:
            return name
    if data is not None and field in data:
        return f"settings file {str(config_file)!r}"
    return "its default"


# ---------------------------------------------------------------------- derived names


def flag_name(field: str) -> str:
    """The command-line flag of setting ``field``: ``--realtime-factor``."""
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of setting ``field``: ``SPIKESTREAM_REALTIME_FACTOR``."""
    return ENV_PREFIX + field.upper()


def settings_key(field: str) -> str:
    """The key of setting ``field`` in a TOML settings file: the field's name."""
    return field


def _fields() -> Iterator[tuple[str, FieldInfo]]:
    yield from ServeSettings.model_fields.items()


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None`` and ``Annotated``, and whether it is a count
    (an integer that may be written ``1e6``)."""
    count = False
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        count = any(m is _INTEGRAL for m in extra)
    return annotation, count


def _argparse_options(name: str, info: FieldInfo) -> dict[str, Any]:
    """``add_argument`` keyword arguments of setting ``name``, derived from its field."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    # Every setting has a description (a test checks): --help explains each flag.
    help_text = (info.description or "").format(default=info.default).replace("%", "%%")
    annotation, count = _unwrap(info.annotation)
    count = count or any(m is _INTEGRAL for m in info.metadata)
    kwargs: dict[str, Any] = {"help": help_text, "dest": name}
    if annotation is bool:
        # Flags only switch a setting on; the environment or the file may switch it off.
        return {**kwargs, "action": "store_true", "default": None}
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        kwargs["choices"] = choices
        if all(type(c) is int for c in choices):
            kwargs["type"] = int
    elif extra.get("text"):
        pass  # parsed by the model's own validator
    elif count:
        kwargs["type"] = count_arg
    elif annotation in (int, float, Path):
        kwargs["type"] = annotation
    if "metavar" in extra:
        kwargs["metavar"] = extra["metavar"]
    if extra.get("append"):
        kwargs["action"] = "append"
    if "const" in extra:
        kwargs.update(nargs="?", const=extra["const"])
    return kwargs


def add_setting_flags(
    parser: argparse.ArgumentParser,
    before: Mapping[str, Callable[[argparse.ArgumentParser], object]] | None = None,
) -> None:
    """Add one flag per setting to ``parser``, in the model's order.

    Every flag defaults to None (not given), so the environment and the settings file
    can supply the value; :func:`flags_of` reads them back. ``before`` adds other flags
    (not settings) in front of the named setting's, so ``--help`` lists them there.
    """
    for name, info in _fields():
        if before is not None and name in before:
            before[name](parser)
        parser.add_argument(flag_name(name), **_argparse_options(name, info))


def flags_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags in ``args`` (None where not given), for
    :func:`load_settings`. A flag given several times (``--broker``) is joined with commas."""
    flags = {name: getattr(args, name, None) for name, _ in _fields()}
    for name, value in flags.items():
        if isinstance(value, list):
            flags[name] = ",".join(value)
    return flags
