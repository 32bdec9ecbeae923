"""Control commands: the payloads arriving on ``<prefix>/<net>/control``.

Two forms are accepted:

* a map, as JSON or msgpack: ``{"cmd": "set", "key": "realtime_factor", "value": 2.0,
  "id": "42"}``; only the keys ``cmd`` (required), ``key``, ``value`` and ``id`` are
  allowed;
* one line of plain text, so that ``mosquitto_pub -m pause`` works::

      pause | resume | reset | status | describe
      set KEY VALUE          # VALUE: a number, true/false, or any other text (a string)
      snapshot [PATH]        # no PATH: the runtime picks one
      restore PATH
      learn on|off

**Sniffing rule.** A payload is text when it decodes as UTF-8 and its first
non-whitespace character is printable ASCII; text starting with ``{``, ``[`` or ``"`` is
JSON, any other text is the line form. Everything else is msgpack (a map, or a string
holding the line form). msgpack maps and strings start with a byte >= 0x80, which can
never begin such text, so the rule is unambiguous.

**One schema.** :data:`COMMAND_SPECS` (the commands and their arguments) and
:data:`SETTINGS` (the keys ``set`` may change: type, finiteness, range, help) are the only
list of either: the decoder validates against them, the runtime dispatches on them, and
``docs/PROTOCOL.md`` shows them (a test compares). The decoder checks everything a value can
be checked for without the running service; bounds that depend on it (the largest
``ticks_per_frame`` the memory budget allows) are passed to :meth:`Setting.check` by the
runtime. Which paths may be read or written is the runtime's decision.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn

from spikestream_client.codec.bounds import (
    OversizePayload,
    PayloadRejected,
    RejectReason,
    describe_keys,
    unique_map,
    unpack_limited,
)

__all__ = [
    "COMMANDS",
    "COMMAND_SPECS",
    "DEFAULT_MAX_CONTROL_BYTES",
    "MAX_REALTIME_FACTOR",
    "SETTINGS",
    "CommandRejected",
    "CommandSpec",
    "ControlCommand",
    "ControlValue",
    "Reply",
    "Setting",
    "control_reference",
    "decode_control",
    "encode_control",
    "text_value",
]

ControlValue = float | int | str | bool | None
"""The type of :attr:`ControlCommand.value`."""

Reply = tuple[str, bytes | None]
"""Where the reply to an MQTT 5 request goes: (response topic, correlation data)."""

DEFAULT_MAX_CONTROL_BYTES: Final = 4096
"""Default size limit of :func:`decode_control`, in bytes."""

MAX_REALTIME_FACTOR: Final = 1e6
"""The largest ``realtime_factor`` (a million simulated seconds per wall second; 0 runs
as fast as possible). Past it a tick's period is below a nanosecond at ``dt`` = 1 ms, and
a pacer's figures in simulated time (the schedule dropped, ``behind``) could overflow."""


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """One control command: decoded from the wire, and the one command type of the service
    (its runtime queues these for the tick thread).

    Attributes:
        cmd: The command, a key of :data:`COMMAND_SPECS`.
        key: The setting to change; only for ``set``.
        value: ``set``: the new value, checked against :data:`SETTINGS` (float for a
            number, int for a count, bool for a flag); ``snapshot``/``restore``:
            the file path (str; None for ``snapshot`` means the runtime's default);
            ``learn``: True for on, False for off; None for the other commands.
        id: Optional request id chosen by the sender, echoed in the reply event.
        reply: Never on the wire: where the receiver sends the reply (an MQTT 5 response
            topic and correlation data), None for none.
        attachment: Never on the wire: what the receiver attached after decoding, e.g. the
            state a ``restore`` loaded from its file.
    """

    cmd: str
    key: str | None = None
    value: ControlValue = None
    id: str | None = None
    reply: Reply | None = None
    attachment: Any = field(default=None, compare=False, repr=False)


ArgKind = Literal["none", "setting", "flag", "path", "optional path"]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command of the control topic.

    Attributes:
        name: The command.
        args: What follows it: nothing, a setting and its value (``set``), on/off, a path,
            or an optional path.
        usage: The text form, e.g. ``set KEY VALUE``.
        help: What it does.
    """

    name: str
    args: ArgKind
    usage: str
    help: str


COMMAND_SPECS: Final[dict[str, CommandSpec]] = {
    c.name: c
    for c in (
        CommandSpec("pause", "none", "pause", "stop ticking (frames stop; the state is kept)"),
        CommandSpec("resume", "none", "resume", "tick again from where it paused"),
        CommandSpec("reset", "none", "reset", "set the state and the tick back to 0"),
        CommandSpec("set", "setting", "set KEY VALUE", "change a setting (see the settings)"),
        CommandSpec(
            "snapshot",
            "optional path",
            "snapshot [NAME]",
            "write the state to NAME in the snapshot folder (default `<net>-snapshot.npz`)",
        ),
        CommandSpec(
            "restore", "path", "restore NAME", "load the state from NAME in the snapshot folder"
        ),
        CommandSpec(
            "status",
            "none",
            "status",
            "reply with the tick, whether paused, and the settings in force",
        ),
        CommandSpec("learn", "flag", "learn on/off", "the same as set learning on/off"),
        CommandSpec(
            "describe", "none", "describe", "publish the retained `describe` document again"
        ),
    )
}
"""The commands, by name: the one registry the decoder, dispatch and docs read."""

COMMANDS: Final[tuple[str, ...]] = tuple(COMMAND_SPECS)
"""The command names, in the order of :data:`COMMAND_SPECS`."""

SettingKind = Literal["number", "count", "flag"]
_FLAGS: Final = {"true": True, "false": False, "on": True, "off": False}


@dataclass(frozen=True, slots=True)
class Setting:
    """A key that ``set`` may change, with the values it allows.

    Attributes:
        key: The setting's name.
        kind: ``number`` (a finite float), ``count`` (an integer) or ``flag`` (on/off).
        help: What it does, with units.
        low: Smallest allowed value (numbers and counts).
        high: Largest allowed value, or None for no fixed bound.
        bound: What sets the upper bound when the runtime supplies it (e.g. the memory
            budget); empty when there is none.
    """

    key: str
    kind: SettingKind
    help: str
    low: float = 0.0
    high: float | None = None
    bound: str = ""

    def allowed(self, high: float | None = None) -> str:
        """What the setting allows, in words (``high`` overrides :attr:`high`)."""
        if self.kind == "flag":
            return "on or off (true or false)"
        top = self.high if high is None else high
        what = "an integer" if self.kind == "count" else "a finite number"
        if top is None:
            upper = f" (at most {self.bound})" if self.bound else ""
            return f"{what} >= {self.low:g}{upper}"
        why = f", {self.bound}" if self.bound and high is not None else ""
        return f"{what} in [{self.low:g}, {top:g}]{why}"

    def check(self, value: object, *, high: float | None = None) -> float | int | bool:
        """Return ``value`` as this setting's type, or raise.

        Args:
            value: A decoded control value (float, bool, str, None) or any object.
            high: An upper bound known only to the runtime; the lower of it and
                :attr:`high` applies.

        Raises:
            PayloadRejected: reason ``value``, naming the key, the value and what is allowed.
        """
        if high is not None and self.high is not None:
            high = min(high, self.high)
        if self.kind == "flag":
            flag = _FLAGS.get(value.strip(_SPACE).lower()) if isinstance(value, str) else value
            if type(flag) is bool:
                return flag
            self._refuse(value, high)
        if type(value) is bool or not isinstance(value, int | float):
            self._refuse(value, high)
        x = float(value)
        top = self.high if high is None else high
        if not math.isfinite(x) or x < self.low or (top is not None and x > top):
            self._refuse(value, high)
        if self.kind == "count":
            if x != math.floor(x):
                self._refuse(value, high)
            return int(x)
        return x

    def _refuse(self, value: object, high: float | None) -> NoReturn:
        _reject(
            f"set {self.key}: {value!r:.60} is not allowed; expected {self.allowed(high)}",
            "value",
        )


SETTINGS: Final[dict[str, Setting]] = {
    s.key: s
    for s in (
        Setting(
            "realtime_factor",
            "number",
            "simulated seconds per wall-clock second; 0 runs as fast as possible",
            high=MAX_REALTIME_FACTOR,
        ),
        Setting(
            "ttl",
            "number",
            "seconds an input value holds before the input falls back to its default; "
            "0 holds it forever",
        ),
        Setting(
            "ticks_per_frame",
            "count",
            "ticks per output frame, for every probe; frame buffers are reallocated",
            low=1,
            bound="the largest the memory budget and a frame's 16 MiB allow",
        ),
        Setting(
            "learning_rate",
            "number",
            "PES learning rate of every learning connection",
            high=1.0,
        ),
        Setting("learning", "flag", "PES learning on every learning connection on or off"),
    )
}
"""The keys ``set`` may change, by name: the one table the decoder, dispatch and docs read."""

_MAP_KEYS: Final = frozenset({"cmd", "key", "value", "id"})
_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# The text grammar is ASCII, as the input payloads' is: \d alone took "٢٠" (Arabic-Indic
# digits, which float() reads) for 20, and str.split() and strip() take U+2028 and a
# no-break space for spaces.
_NUMBER: Final = re.compile(r"[+-]?(?>\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SPACE: Final = " \t\n\r\v\f"
_SPACES: Final = re.compile(f"[{_SPACE}]+")
_NONFINITE: Final = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ALLOWED: Final = ", ".join(COMMANDS)
_SETTABLE: Final = ", ".join(SETTINGS)


def control_reference() -> list[str]:
    """Markdown table rows of every command and setting, as ``docs/PROTOCOL.md`` shows."""
    rows = [f"| `{c.usage}` | {c.help} |" for c in COMMAND_SPECS.values()]
    rows += [f"| `{s.key}` | {s.allowed()} | {s.help} |" for s in SETTINGS.values()]
    return rows


class CommandRejected(PayloadRejected):
    """A control command was refused after its name and ``id`` were read: the reply event
    can name the command and echo the request id, so a client waiting on it gets it."""

    def __init__(
        self,
        message: str,
        reason: RejectReason = "value",
        cmd: str | None = None,
        id: str | None = None,  # shadows the builtin on purpose: it is the wire key's name
    ) -> None:
        super().__init__(message, reason)
        self.cmd = cmd
        self.id = id

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.reason, self.cmd, self.id))


def _reject(message: str, reason: RejectReason) -> NoReturn:
    raise PayloadRejected(message, reason)


def _reject_ext(code: int, data: bytes) -> NoReturn:
    _reject(f"msgpack extension type {code} is not allowed in a control command", "type")


def _reject_constant(name: str) -> NoReturn:
    _reject(f"control values must be finite, got JSON {name}", "nonfinite")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _got(value: object) -> str:
    """What arrived, in words: "nothing" for a missing (null) value, else its type and
    its start."""
    return "nothing" if value is None else f"{_type_name(value)} {value!r:.60}"


def text_value(raw: str) -> ControlValue:
    """Type the VALUE of a text ``set`` line: number, true/false, else the string (its
    ends stripped of ASCII spaces).

    Raises:
        PayloadRejected: ``raw`` is ``nan`` or ``inf`` (reason ``nonfinite``).
    """
    raw = raw.strip(_SPACE)
    if _NUMBER.fullmatch(raw):
        return _finite(float(raw))
    if _NONFINITE.fullmatch(raw):
        _reject(f"control values must be finite, got {raw!r}", "nonfinite")
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def _finite(value: float) -> float:
    if not math.isfinite(value):
        _reject(f"control values must be finite, got {value!r}", "nonfinite")
    return value


def _map_value(value: object) -> ControlValue:
    """Type the ``value`` of a map command (JSON or msgpack)."""
    # JSON and msgpack only produce exact built-in types, so isinstance is exact here.
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        try:
            return _finite(float(value))
        except OverflowError:
            _reject("control values must be finite, got an integer beyond float range", "nonfinite")
    _reject(
        f"'value' must be a number, string, boolean or null, got {_type_name(value)}",
        "type",
    )


def _path(cmd: str, value: ControlValue, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if type(value) is not str or not value or "\x00" in value or not _is_utf8(value):
        _reject(
            f"{cmd!r} needs a file path (a non-empty UTF-8 string without NUL), got {_got(value)}",
            "value",
        )
    return value


def _is_utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form: JSON's ``\\ud800`` gives a lone surrogate,
    which has none (and names no file)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _build(cmd: object, key: object, value: ControlValue, id_: object) -> ControlCommand:
    """Check one command's arguments against :data:`COMMAND_SPECS` and :data:`SETTINGS`;
    ``value`` is already typed."""
    if type(cmd) is not str:
        _reject(f"'cmd' must be a string, one of: {_ALLOWED}; got {_type_name(cmd)}", "type")
    spec = COMMAND_SPECS.get(cmd.strip(_SPACE).lower())
    if spec is None:
        _reject(f"unknown control command {cmd!r:.40}; allowed: {_ALLOWED}", "command")
    name = spec.name
    if id_ is not None:
        # Numbers are accepted as ids because many JSON clients use counters.
        if type(id_) is int:
            id_ = str(id_)
        elif type(id_) is not str:
            _reject(f"'id' must be a string or an integer, got {_type_name(id_)}", "type")
    request_id: str | None = id_
    try:
        return _arguments(spec, key, value, request_id)
    except CommandRejected:
        raise
    except PayloadRejected as err:
        raise CommandRejected(str(err), err.reason, name, request_id) from None


def _arguments(
    spec: CommandSpec, key: object, value: ControlValue, request_id: str | None
) -> ControlCommand:
    name = spec.name
    if spec.args == "setting":
        if type(key) is not str or not _KEY.fullmatch(key):
            _reject(
                "'set' needs a key of letters, digits, '_', '.' or '-' (not starting "
                f"with a digit), got {_got(key)}",
                "value",
            )
        setting = SETTINGS.get(key)
        if setting is None:
            _reject(f"cannot set {key!r:.60}; settable keys: {_SETTABLE}", "value")
        if value is None:
            _reject(f"'set {key}' needs a value, got none; expected {setting.allowed()}", "value")
        return ControlCommand("set", key, setting.check(value), request_id)
    if key is not None:
        # A client that writes control(net, "learn", "off") has put the switch where
        # the key goes: say where it belongs.
        in_value = "; its path is the value"
        where = {"flag": "; its on/off is the value", "path": in_value, "optional path": in_value}
        hint = where.get(spec.args, "")
        _reject(f"{name!r} takes no key (only 'set' does), got {key!r:.60}{hint}", "value")
    if spec.args == "none":
        if value is not None:
            _reject(f"{name!r} takes no value, got {value!r:.60}", "value")
        return ControlCommand(name, None, None, request_id)
    if spec.args == "flag":
        flag = _FLAGS.get(value.strip(_SPACE).lower()) if type(value) is str else value
        if type(flag) is not bool:
            _reject(f"{name!r} needs on or off (or true/false), got {value!r:.60}", "value")
        return ControlCommand(name, None, flag, request_id)
    path = _path(name, value, required=spec.args == "path")
    return ControlCommand(name, None, path, request_id)


def _from_map(obj: dict[Any, Any]) -> ControlCommand:
    keys = set(obj)
    if not keys <= _MAP_KEYS or "cmd" not in keys:
        missing = "" if "cmd" in keys else "; missing 'cmd'"
        _reject(
            f"a control map takes the keys 'cmd', 'key', 'value', 'id'; got extra keys "
            f"{describe_keys(keys - _MAP_KEYS)}{missing}",
            "keys",
        )
    return _build(obj["cmd"], obj.get("key"), _map_value(obj.get("value")), obj.get("id"))


def _words(text: str) -> list[str]:
    """``text`` split at its first run of ASCII spaces into at most two words (none for
    only spaces), the ends stripped of ASCII spaces."""
    text = text.strip(_SPACE)
    return _SPACES.split(text, maxsplit=1) if text else []


def _from_line(line: str) -> ControlCommand:
    parts = _words(line)
    if not parts:
        _reject(f"empty control command; allowed: {_ALLOWED}", "garbage")
    name = parts[0].lower()
    rest = parts[1] if len(parts) > 1 else ""
    if name == "set":
        # set KEY VALUE: VALUE is the rest of the line, so string values may hold spaces.
        pieces = _words(rest)
        key = pieces[0] if pieces else None
        raw = pieces[1] if len(pieces) > 1 else ""
        return _build(name, key, text_value(raw) if raw else None, None)
    spec = COMMAND_SPECS.get(name)
    if spec is not None and spec.args == "none" and rest:
        _reject(f"{name!r} takes no arguments, got {rest!r:.60}", "value")
    # For snapshot/restore the whole rest of the line is the path, spaces included.
    return _build(parts[0], None, rest or None, None)


def _as_text(payload: bytes) -> str | None:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.strip(_SPACE)
    if not text or not " " < text[0] < "\x7f":
        return None
    return text


def _from_object(obj: object) -> ControlCommand:
    if type(obj) is dict:
        return _from_map(obj)
    if type(obj) is str:
        return _from_line(obj)
    _reject(
        f"expected a control map {{cmd, key, value, id}} or a command line, got {_type_name(obj)}",
        "type",
    )


def decode_control(
    payload: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_CONTROL_BYTES
) -> ControlCommand:
    """Decode one control command.

    Args:
        payload: The raw MQTT payload (JSON, msgpack or one line of text).
        max_bytes: Size limit in bytes, checked before any decoding.

    Returns:
        The command, with ``value`` typed as described in :class:`ControlCommand`.

    Raises:
        OversizePayload: ``len(payload) > max_bytes`` (reason ``oversize``).
        PayloadRejected: With reason ``command`` for an unknown command (the message
            lists the allowed ones), ``value`` for missing or bad arguments, ``keys`` for
            unknown map keys, ``type``, ``nonfinite`` or ``garbage``.
    """
    size = len(payload)
    if size > max_bytes:
        raise OversizePayload(f"control payload of {size} bytes exceeds the limit of {max_bytes}")
    data = bytes(payload)
    if not data.strip():
        _reject(f"empty control payload; allowed commands: {_ALLOWED}", "garbage")
    text = _as_text(data)
    if text is not None:
        if text[0] not in '{["':
            return _from_line(text)
        try:
            obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=unique_map)
        except PayloadRejected:
            raise
        except RecursionError:
            _reject("control JSON nests too deep", "depth")
        except ValueError as exc:
            _reject(f"control payload starts like JSON but is not valid JSON: {exc}", "garbage")
        return _from_object(obj)
    obj = unpack_limited(
        data,
        max_bytes,
        what="control",
        expected="a control command as text, JSON or msgpack",
        ext_hook=_reject_ext,
    )
    return _from_object(obj)


def encode_control(
    cmd: str,
    key: str | None = None,
    value: ControlValue = None,
    id: str | None = None,  # shadows the builtin on purpose: it is the wire key's name
) -> bytes:
    """Encode a control command as compact JSON, for clients.

    The result is checked with :func:`decode_control`, so an invalid command fails here
    rather than at the service.

    Raises:
        PayloadRejected: The command would be rejected by the service's decoder.
    """
    obj: dict[str, object] = {"cmd": cmd}
    if key is not None:
        obj["key"] = key
    if value is not None:
        obj["value"] = value
    if id is not None:
        obj["id"] = id
    try:
        payload = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        _reject(f"cannot encode control command {obj!r:.80} as JSON: {exc}", "type")
    decode_control(payload, max_bytes=max(DEFAULT_MAX_CONTROL_BYTES, len(payload)))
    return payload
