"""Network descriptions: TOML files validated into frozen pydantic models.

A spec holds no arrays. :mod:`spikestream.build` turns it into arrays. Every validation
error becomes a :class:`~spikestream.errors.NetworkFileError` whose message names the file,
the key path (``populations.a.n``), the offending value and what was allowed.

The file format is documented in ``docs/NETWORK_FILES.md``; ``examples/seed.toml`` is the
network of the tutorial the project grew from.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from spikestream.errors import ConfigError, NetworkFileError
from spikestream.spec_errors import cut, format_errors
from spikestream_client.files import UnreadableFile, read_small_text
from spikestream_client.names import NAME_PATTERN, NAME_RULE, is_name, reserved_network

#: Names become MQTT topic levels and ``.npz`` keys: no ``+``, ``#``, ``/``, dots or spaces.
#: The rule lives in :mod:`spikestream_client.names`, shared with the frame decoder.

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
#: A connection's name: a name, or two names joined by ``->``.
CONNECTION_NAME_PATTERN = rf"{NAME_PATTERN[:-1]}(->{NAME_PATTERN[1:-1]})?$"
Dtype = Literal["float64", "float32"]
#: ``"spikestream"``: only connections that close a cycle deliver the previous tick's value.
#: ``"nengo"``: every filtered connection does, as in Nengo (docs/MODEL.md).
Timing = Literal["spikestream", "nengo"]

#: Largest magnitude of a value in a network file (signal amplitudes and offsets, constants,
#: defaults, weights, transforms, encoders, frequencies). Far beyond any represented value
#: (about 1), and far enough below float32's 3.4e38 that sums over millions of neurons
#: stay finite; it also keeps ``high - low`` of a uniform draw finite.
VALUE_LIMIT = 1e9
#: Longest time in a network file, seconds (time constants, ``ttl``, a step's time, a file
#: signal's sample length): about 11.6 days.
TIME_LIMIT = 1e6

#: Largest random seed: a run records its seed as an int64.
MAX_SEED = 2**63 - 1

#: Longest file path in a network file, characters (Linux's PATH_MAX, in bytes).
PATH_MAX = 4096

#: Names an error lists of what was allowed (populations, inputs), at most.
NAMES_LISTED = 20

#: Shortest tick, seconds.
MIN_DT = 1e-6
#: Largest network file read, bytes. Imported models put their arrays in side files, so a
#: network file is a few KiB; this leaves room for inline encoders of ~10^6 numbers while
#: bounding what parsing allocates (tomllib builds a Python object per value).
NETWORK_FILE_MAX_BYTES = 16 * 1024 * 1024

#: A finite number with ``|value| <= VALUE_LIMIT``. NaN and inf are refused everywhere
#: (``allow_inf_nan=False`` in every model's config too): no finite run follows from them.
Real = Annotated[float, Field(allow_inf_nan=False, ge=-VALUE_LIMIT, le=VALUE_LIMIT)]
#: A finite, non-negative number.
NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0, le=VALUE_LIMIT)]
#: A finite, positive number.
Positive = Annotated[float, Field(allow_inf_nan=False, gt=0, le=VALUE_LIMIT)]
#: A duration or time constant in seconds, ``0 <= value <= TIME_LIMIT``.
Seconds = Annotated[float, Field(allow_inf_nan=False, ge=0, le=TIME_LIMIT)]
#: A duration in seconds, ``0 < value <= TIME_LIMIT``.
PositiveSeconds = Annotated[float, Field(allow_inf_nan=False, gt=0, le=TIME_LIMIT)]
#: One number for every dimension, or one number per dimension.
Values = Real | list[Real]


def _list_as_tuple(value: Any) -> Any:
    # TOML has arrays, not tuples, and strict validation takes a tuple only as a tuple.
    return tuple(value) if isinstance(value, list) else value


#: ``[low, high]``: two numbers (a TOML array of two).
Range = Annotated[tuple[Real, Real], BeforeValidator(_list_as_tuple)]


def _whole_as_int(value: Any) -> Any:
    # A count written as a whole float (``n = 1e3``, ``n = 50.0``) is that count, as a
    # flag's or a setting's is; 2.5, true and "50" stay refused by the strict int.
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


#: An integer, or a float holding a whole number.
Count = Annotated[int, BeforeValidator(_whole_as_int)]


def _file_path(value: str) -> str:
    # Refused here, where the error names the key, rather than as a traceback from the
    # build's os.open (NUL) or Path.expanduser (an unknown ~user).
    if not value or "\x00" in value:
        raise ValueError(f"expected a file path, a non-empty string without NUL; got {value!r:.80}")
    if len(value) > PATH_MAX:  # no file system opens it, and every error would echo it whole
        raise ValueError(
            f"a path of {len(value)} characters is not allowed; expected at most {PATH_MAX} "
            f"(got {value!r:.80}...)"
        )
    if value.startswith("~"):
        try:
            Path(value).expanduser()
        except RuntimeError:
            user = value[1:].split("/", 1)[0]
            whose = (
                f"the home folder of {user!r:.40}, a user this machine does not have"
                if user
                else "the home folder, and no HOME is set"
            )
            raise ValueError(f"expected a file path; {value!r:.80} names {whose}") from None
    return value


#: A file path as written in the network file (relative to its folder, or ``~``).
FilePath = Annotated[str, AfterValidator(_file_path)]


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid name, else raise ``ValueError`` naming ``kind``."""
    if not is_name(value):
        raise ValueError(f"{kind} name {value!r} is not allowed; expected {NAME_RULE}")
    return value


class _Spec(BaseModel):
    """Base of every spec model: frozen, strictly typed, and unknown keys are errors that
    list the allowed keys (pydantic's own message for ``extra='forbid'`` does not)."""

    # strict: a network file is hostile, and lax coercion turned ``synapse = true`` into a
    # 1 s synapse and ``n = "50"`` into 50. Strict still takes an int where a float is
    # expected (``tau_rc = 1``), and TOML's own types are all a file can hold.
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False, strict=True
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = set(cls.model_fields)
            unknown = [k for k in data if k not in allowed]
            if unknown:
                # A hostile file's key may be megabytes long: shown cut short, as values are.
                raise ValueError(
                    f"unknown key {cut(repr(unknown[0]))}; allowed keys: "
                    f"{', '.join(sorted(allowed))}"
                )
        return data


# --------------------------------------------------------------------------- signals


class SinSignal(_Spec):
    """``amp * sin(omega * t + phase) + offset`` on every dimension.

    ``omega`` is in rad/s (the seed's ``sin(t)`` is ``omega = 1``); ``freq`` in Hz may be
    given instead.
    """

    kind: Literal["sin"] = "sin"
    amp: Real = 1.0
    omega: Real | None = None
    freq: Positive | None = None
    phase: Real = 0.0
    offset: Real = 0.0

    @model_validator(mode="after")
    def _one_rate(self) -> Self:
        if self.omega is not None and self.freq is not None:
            raise ValueError(
                f"give either omega (rad/s) or freq (Hz), not both; got omega={self.omega}, "
                f"freq={self.freq}"
            )
        return self

    @property
    def angular(self) -> float:
        """Angular frequency in rad/s."""
        if self.freq is not None:
            return 2.0 * math.pi * self.freq
        return 1.0 if self.omega is None else self.omega


class ConstantSignal(_Spec):
    """A constant value (a number for every dimension, or one number per dimension)."""

    kind: Literal["constant"] = "constant"
    value: Values = 0.0


class StepSignal(_Spec):
    """``before`` until time ``t`` (s), then ``after``."""

    kind: Literal["step"] = "step"
    t: Seconds = 1.0
    before: Values = 0.0
    after: Values = 1.0


class FileSignal(_Spec):
    """Samples from a ``.npy`` (shape ``(samples,)`` or ``(samples, dim)``) or CSV file
    (one row per sample, ``dim`` columns), held for ``dt`` seconds each (default: the
    network's ``dt``). After the last sample the signal holds it, or loops."""

    kind: Literal["file"] = "file"
    path: FilePath
    # Bounded below so that t / dt stays a representable sample index over any run.
    dt: Annotated[float, Field(allow_inf_nan=False, ge=1e-9, le=TIME_LIMIT)] | None = None
    loop: bool = False


SignalSpec = Annotated[
    SinSignal | ConstantSignal | StepSignal | FileSignal, Field(discriminator="kind")
]


# --------------------------------------------------------------------------- sections


class NetworkSection(_Spec):
    """``[network]``: name, tick length ``dt`` (s), random ``seed`` and number type."""

    name: Name = "net"
    # At least a microsecond: a tick loop paced to the wall clock cannot run faster, and a
    # dt of 1e-300 made a 0.05 s run ask for 5e298 ticks.
    dt: float = Field(default=0.001, ge=MIN_DT, le=1.0, allow_inf_nan=False)
    seed: Count | None = Field(default=None, ge=0, le=MAX_SEED)
    dtype: Dtype = "float64"
    # Storage of the matrices the tick reads (encoders, decoders, weights): None keeps the
    # state dtype; "float16" rounds them to half precision (spikestream.sim.weights).
    weights_dtype: Literal["float16"] | None = None
    timing: Timing = "spikestream"

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        why = reserved_network(value)
        if why is not None:
            raise ValueError(why)
        return value


class PopulationSpec(_Spec):
    """``[populations.NAME]``: a population of LIF neurons with NEF tuning.

    ``max_rates`` (Hz) and ``intercepts`` are ``[low, high]`` ranges drawn uniformly, or
    ``.npy`` files of one value per neuron (shape ``(n,)``). ``encoders`` is optional: one
    row of ``dim`` numbers per neuron (normalised), or a file. ``radius`` scales the
    represented range (``x / radius`` is encoded, as in Nengo). ``initial_voltage`` is the
    voltage every neuron starts (and resets) at, or a ``.npy`` file of shape ``(n,)``; at
    most 1, the threshold (a neuron started above it, with a current between 1 and its
    voltage, has no spike time: ``log1p`` of less than -1, NaN for good).
    """

    n: Count = Field(gt=0, le=10_000_000)
    dim: Count = Field(default=1, ge=1, le=4096)
    # Bounded below as dt is: 5e-324 s overflowed the rates to inf (a dead population).
    tau_rc: Annotated[float, Field(allow_inf_nan=False, ge=MIN_DT, le=TIME_LIMIT)] = 0.02
    tau_ref: Seconds = 0.002
    min_voltage: Annotated[Real, Field(le=0)] = 0.0
    max_rates: Range | FilePath = (200.0, 400.0)
    intercepts: Range | FilePath = (-1.0, 1.0)
    encoders: list[list[Real]] | FilePath | None = None
    # x / radius is encoded: below 1e-6 the scaled encoders overflow float32 to inf.
    radius: Annotated[float, Field(allow_inf_nan=False, ge=1e-6, le=VALUE_LIMIT)] = 1.0
    initial_voltage: Annotated[Real, Field(le=1)] | FilePath = 0.0
    seed: Count | None = Field(default=None, ge=0, le=MAX_SEED)

    @field_validator("max_rates", "intercepts")
    @classmethod
    def _ordered(
        cls, v: tuple[float, float] | str, info: ValidationInfo
    ) -> tuple[float, float] | str:
        if isinstance(v, str):  # a file of per-neuron values, checked when built
            return v
        lo, hi = v
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"{info.field_name} must be [low, high] with low <= high; got {v}")
        return v

    @model_validator(mode="after")
    def _tuning_in_range(self) -> Self:
        # Per-neuron files (strings) are checked when built.
        if not isinstance(self.max_rates, str):
            lo, hi = self.max_rates
            if lo <= 0:
                raise ValueError(f"max_rates: {lo} Hz is not allowed; max rates must be > 0 Hz")
            if self.tau_ref > 0 and hi >= 1.0 / self.tau_ref:
                raise ValueError(
                    f"max_rates: {hi} Hz is not allowed; a LIF neuron with tau_ref = "
                    f"{self.tau_ref} s fires below 1/tau_ref = {1.0 / self.tau_ref:g} Hz, "
                    f"so max rates must be < {1.0 / self.tau_ref:g} Hz"
                )
        if not isinstance(self.intercepts, str):
            ilo, ihi = self.intercepts
            if ilo < -1.0 or ihi > 1.0 or ilo >= 1.0:
                raise ValueError(
                    f"intercepts: {list(self.intercepts)} is not allowed; intercepts must lie "
                    "in [-1, 1] with low < 1"
                )
        enc = self.encoders
        if isinstance(enc, list) and (len(enc) != self.n or any(len(r) != self.dim for r in enc)):
            shape = (len(enc), len(enc[0]) if enc else 0)
            raise ValueError(
                f"encoders: got {len(enc)} rows of shape {shape}; expected "
                f"n = {self.n} rows of dim = {self.dim} numbers"
            )
        return self


class InputSpec(_Spec):
    """``[inputs.NAME]``: a value fed from MQTT (live) or from ``signal`` (offline).

    With a ``target`` the value is encoded into that population
    (``J += gain * (E @ x)``). Without one it only feeds learning rules (an error signal).
    ``default`` is the value before the first message and after ``ttl`` seconds without one.
    """

    dim: Count = Field(default=1, ge=1, le=4096)
    target: Name | None = None
    signal: SignalSpec | Literal["sin", "constant", "step"] = Field(
        default_factory=lambda: ConstantSignal()
    )
    default: Values = 0.0
    ttl: PositiveSeconds | None = None

    @field_validator("signal", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        # ``signal = "sin"`` is shorthand for ``signal = {kind = "sin"}``.
        if isinstance(v, str):
            allowed = ("sin", "constant", "step")
            if v not in allowed:
                raise ValueError(
                    f"signal {v!r} is not allowed; expected one of {', '.join(allowed)} or a "
                    "table such as {kind = 'file', path = 'u.npy'}"
                )
            return {"kind": v}
        return v

    @model_validator(mode="after")
    def _dims(self) -> Self:
        for key, value in (("default", self.default), *self._signal_values()):
            if isinstance(value, list) and len(value) != self.dim:
                raise ValueError(
                    f"{key}: got {len(value)} numbers; expected dim = {self.dim} numbers"
                )
        return self

    def _signal_values(self) -> list[tuple[str, Values]]:
        s = self.signal
        if isinstance(s, ConstantSignal):
            return [("signal.value", s.value)]
        if isinstance(s, StepSignal):
            return [("signal.before", s.before), ("signal.after", s.after)]
        return []


class WeightsDist(_Spec):
    """Random weights, shape ``(pre.n, post.n)``: ``dist = "normal"`` (``mean``, ``std``) or
    ``"uniform"`` (``low``, ``high``), with an optional ``seed``."""

    dist: Literal["normal", "uniform"] = "normal"
    mean: Real = 0.0
    std: NonNegative = 1.0
    low: Real = -1.0
    high: Real = 1.0
    seed: Count | None = Field(default=None, ge=0, le=MAX_SEED)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.dist == "uniform" and self.low > self.high:
            raise ValueError(
                f"low = {self.low} > high = {self.high} is not allowed; a uniform "
                "distribution needs low <= high"
            )
        return self


class WeightsFile(_Spec):
    """Weights from a ``.npy`` file of shape ``(pre.n, post.n)`` (path relative to the
    network file)."""

    file: FilePath


def _weights_kind(value: Any) -> str:
    # A table with a ``file`` key is a weight file; anything else is checked as a
    # distribution, so an error speaks of that one member only.
    if (isinstance(value, Mapping) and "file" in value) or isinstance(value, WeightsFile):
        return "WeightsFile"
    return "WeightsDist"


Weights = Annotated[
    Annotated[WeightsDist, Tag("WeightsDist")] | Annotated[WeightsFile, Tag("WeightsFile")],
    Discriminator(_weights_kind),
]


class LearningSpec(_Spec):
    """Online learning on a decoded connection (PES), driven by the input ``error``,
    lowpass-filtered by ``synapse`` seconds first (0: used as it arrives)."""

    rule: Literal["pes"] = "pes"
    error: Name
    rate: NonNegative = 1e-4
    enabled: bool = True
    synapse: Seconds = 0.0


class ConnectionSpec(_Spec):
    """``[[connections]]``: from population ``pre`` to population ``post``.

    Either ``weights`` (a full matrix, ``I_syn += W.T @ y``), ``function`` (a decoded NEF
    connection computing ``function(x)``, kept factored) or ``decoders`` (a decoded
    connection with given decoders, a ``.npy`` file of shape ``(pre.n, d_out)``).
    ``synapse`` is the lowpass time constant in seconds; 0 means unfiltered.

    ``pre`` may also name an input: the input's value is filtered by ``synapse``, multiplied
    by ``transform`` (shape ``(post.dim, input.dim)``) and encoded into ``post``. Such a
    connection has no ``weights``, ``function`` or ``decoders``.
    """

    pre: Name
    post: Name
    # A name, or ``pre->post`` as the default label reads: it reaches events, logs and the
    # keys of a run's .npz, so it follows the naming rule too.
    name: Annotated[str, Field(pattern=CONNECTION_NAME_PATTERN)] | None = None
    synapse: Seconds = 0.005
    weights: Weights | None = None
    function: str | None = None
    decoders: FilePath | None = None
    transform: Real | list[list[Real]] = 1.0
    # Above 1000 the regularisation swamps every rate: the decoders are all but zero.
    reg: Annotated[float, Field(allow_inf_nan=False, ge=0, le=1000)] = 0.1
    eval_points: Count = Field(default=750, ge=1, le=1_000_000)
    learning: LearningSpec | None = None

    @field_validator("transform")
    @classmethod
    def _rectangular(cls, value: float | list[list[float]]) -> float | list[list[float]]:
        if isinstance(value, list):
            lengths = [len(row) for row in value]
            if not lengths or min(lengths) == 0 or len(set(lengths)) > 1:
                shown = ", ".join(map(str, lengths[:8])) + (", ..." if len(lengths) > 8 else "")
                raise ValueError(
                    f"a matrix of {len(lengths)} row(s) of length(s) [{shown}]; expected a "
                    "number or rows of one length, at least 1: shape (post.dim, d_out)"
                )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [self.weights, self.function, self.decoders]
        if sum(v is not None for v in given) > 1:
            raise ValueError(
                "give at most one of weights = {dist = ...} | {file = ...} (a full matrix), "
                "function = '...' or decoders = 'd.npy' (decoded); got "
                f"weights={self.weights!r}, function={self.function!r}, "
                f"decoders={self.decoders!r}"
            )
        if self.learning is not None and self.kind != "decoded":
            raise ValueError(
                "learning needs a decoded connection (function = '...' or decoders = '...')"
            )
        return self

    @property
    def kind(self) -> Literal["dense", "decoded", "input"]:
        """``"dense"`` (weights), ``"decoded"`` (function or decoders) or ``"input"`` (none
        of them: ``pre`` must be an input)."""
        if self.weights is not None:
            return "dense"
        if self.function is not None or self.decoders is not None:
            return "decoded"
        return "input"

    @property
    def label(self) -> str:
        """The connection's name: ``name`` if given, else ``"pre->post"``."""
        return self.name if self.name is not None else f"{self.pre}->{self.post}"


ProbeKind = Literal["spikes", "filtered", "voltage", "input", "decoded"]


class ProbeSpec(_Spec):
    """``[probes.NAME]``: what to record or stream.

    ``spikes``, ``voltage``, ``filtered`` (lowpass of spikes, ``synapse`` s) and ``decoded``
    (NEF estimate of the represented value, ``synapse`` s) target a population; ``input``
    targets an input. ``ticks_per_frame`` sets how many ticks each MQTT frame carries.
    """

    target: Name
    kind: ProbeKind = "spikes"
    synapse: Seconds = 0.01
    ticks_per_frame: Count = Field(default=10, ge=1, le=100_000)
    function: str | None = None
    decoders: FilePath | None = None

    @model_validator(mode="after")
    def _decoders_or_function(self) -> Self:
        if self.decoders is not None and (self.kind != "decoded" or self.function is not None):
            raise ValueError(
                f"decoders: {self.decoders!r} is only allowed on a decoded probe without a "
                f"function; got kind = {self.kind!r}, function = {self.function!r}"
            )
        if self.function is not None and self.kind != "decoded":
            raise ValueError(
                f"function: {self.function!r:.80} is only allowed on a decoded probe (it "
                f"decodes a function of the value); got kind = {self.kind!r}"
            )
        return self


class NetworkSpec(_Spec):
    """A whole network file."""

    network: NetworkSection = Field(default_factory=NetworkSection)
    populations: dict[Name, PopulationSpec] = Field(min_length=1)
    inputs: dict[Name, InputSpec] = Field(default_factory=dict)
    connections: list[ConnectionSpec] = Field(default_factory=list)
    probes: dict[Name, ProbeSpec] = Field(default_factory=dict)

    # Folder that relative paths in the file (weights, encoders, signals) resolve against.
    _base_dir: Path | None = PrivateAttr(default=None)
    # Where the spec came from (the file's path), for error messages.
    _source: str = PrivateAttr(default="<network>")

    @property
    def source(self) -> str:
        """The network file's path (or ``<network>``), as error messages name it."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Folder that relative file paths resolve against (the network file's folder)."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def resolve(self, relative: str) -> Path:
        """Resolve a path given in the network file."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @model_validator(mode="after")
    def _references(self) -> Self:
        def one_of(names: Iterable[str], none: str = "(none defined)") -> str:
            # At most NAMES_LISTED names: 5000 populations made a 315 KB message.
            listed = sorted(names)
            more = len(listed) - NAMES_LISTED
            shown = ", ".join(listed[:NAMES_LISTED])
            return (f"{shown} and {more} more" if more > 0 else shown) or none

        pops, ins = self.populations, self.inputs
        clash = sorted(set(pops) & set(ins))
        if clash:
            raise ValueError(
                f"duplicate name {clash[0]!r}: used by a population and an input; names "
                "must be unique across populations and inputs"
            )
        allowed_pops = one_of(pops)
        for name, inp in ins.items():
            if inp.target is None:
                continue
            if inp.target not in pops:
                raise ValueError(
                    f"inputs.{name}.target: {inp.target!r} is not a population; "
                    f"expected one of: {allowed_pops}"
                )
            if pops[inp.target].dim != inp.dim:
                raise ValueError(
                    f"inputs.{name}.dim: {inp.dim} does not match population "
                    f"{inp.target!r} dim = {pops[inp.target].dim}"
                )
        seen: set[str] = set()
        for i, c in enumerate(self.connections):
            if c.kind == "input" and c.pre not in ins:
                raise ValueError(
                    f"connections[{i}].pre: {c.pre!r} is not an input; a connection from a "
                    "population needs weights = {...}, function = '...' or decoders = '...'; "
                    f"inputs: {one_of(ins)}"
                )
            for key in ("pre", "post"):
                ref = getattr(c, key)
                if ref not in pops and not (key == "pre" and c.kind == "input"):
                    raise ValueError(
                        f"connections[{i}].{key}: {ref!r} is not a population; expected one "
                        f"of: {allowed_pops}"
                    )
            if c.label in seen:
                raise ValueError(
                    f"connections[{i}]: duplicate connection name {c.label!r}; give each "
                    "connection between the same populations a distinct name = '...'"
                )
            seen.add(c.label)
            if c.learning is not None and c.learning.error not in ins:
                raise ValueError(
                    f"connections[{i}].learning.error: {c.learning.error!r} is not an input; "
                    f"expected one of: {one_of(ins, '(no inputs defined)')}"
                )
        for name, p in self.probes.items():
            if name in ins and not (p.kind == "input" and p.target == name):
                raise ValueError(
                    f"probes.{name}: duplicate name {name!r}: an input has this name, and "
                    "offline runs store inputs under their names; rename the probe"
                )
            targets = ins if p.kind == "input" else pops
            if p.target not in targets:
                what = "an input" if p.kind == "input" else "a population"
                raise ValueError(
                    f"probes.{name}.target: {p.target!r} is not {what}; expected one of: "
                    f"{one_of(targets)}"
                )
        return self

    @property
    def name(self) -> str:
        """The network's name (the ``<net>`` topic level)."""
        return self.network.name


# Dict-valued sections: the next part of an error location is a name from the file.
_NAMED_SECTIONS = frozenset({"populations", "inputs", "probes"})


def _field_names() -> frozenset[str]:
    seen: set[str] = set()
    todo: list[type[_Spec]] = [_Spec]
    while todo:
        cls = todo.pop()
        seen.update(cls.model_fields)
        todo.extend(cls.__subclasses__())
    return frozenset(seen)


def parse_network(data: Mapping[str, Any], *, source: str = "<network>") -> NetworkSpec:
    """Validate an already-parsed TOML mapping into a :class:`NetworkSpec`.

    Raises:
        NetworkFileError: naming ``source``, the key path, the bad value and what is allowed.
    """
    try:
        spec = NetworkSpec.model_validate(data)
    except ValidationError as err:
        raise NetworkFileError(
            format_errors(source, err, _field_names(), _NAMED_SECTIONS)
        ) from None
    spec._source = source
    return spec


def read_text_file(
    path: Path,
    label: str,
    max_bytes: int,
    *,
    what: str = "network file",
    error: type[ConfigError] = NetworkFileError,
) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``max_bytes`` bytes. ``label``
    starts every message (the path, or ``settings file 'x.toml'``); ``what`` names the file
    in them.

    Read by :func:`spikestream_client.files.read_small_text`: a FIFO, a device or a huge
    file is refused before anything is read.

    Raises:
        ConfigError: of class ``error``, ``"<label>: <reason>; expected ..."``.
    """
    try:
        return read_small_text(path, max_bytes)
    except UnreadableFile as err:
        reason = {
            "os": f"cannot read {what}: {err.detail}",
            "special": f"not a regular file (a folder, FIFO or device); expected a {what}",
            "large": f"larger than {max_bytes} bytes; expected a {what} of at most {max_bytes}",
            "encoding": f"{what} is not UTF-8 text ({err.detail})",
        }[err.kind]
        raise error(f"{label}: {reason}") from None


def parse_toml(
    text: str,
    label: str,
    *,
    what: str = "network file",
    error: type[ConfigError] = NetworkFileError,
) -> dict[str, Any]:
    """Parse ``text`` (a ``what``) as TOML.

    Raises:
        ConfigError: of class ``error``, ``"<label>: not valid TOML: <reason>"``.
    """
    try:
        return tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise error(f"{label}: not valid TOML: {str(err)[:200]}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise error(
            f"{label}: not valid TOML: arrays or inline tables nest too deeply (a {what} "
            "nests a few levels)"
        ) from None


def load_network(path: str | Path) -> NetworkSpec:
    """Read and validate a TOML network file (a regular file of at most
    :data:`NETWORK_FILE_MAX_BYTES` bytes).

    Raises:
        NetworkFileError: the file is missing, not a regular file, too large, not UTF-8,
            not valid TOML, or fails validation.
    """
    p = Path(path)
    data = parse_toml(read_text_file(p, str(p), NETWORK_FILE_MAX_BYTES), str(p))
    spec = parse_network(data, source=str(p))
    spec._base_dir = p.resolve().parent
    return spec
