"""Broker addresses: parse ``mqtt://``-style URLs and resolve credentials.

Accepted forms (see :func:`parse_broker_url`)::

    mqtt://[user[:password]@]host[:port]           plain TCP, port 1883 by default
    mqtts://[user[:password]@]host[:port]          TLS, port 8883 by default
    ws://[user[:password]@]host[:port][/path]      MQTT over WebSocket, port 80, path /mqtt
    wss://[user[:password]@]host[:port][/path]     the same over TLS, port 443
    embedded                                       start an in-process broker (amqtt)
    auto                                           use localhost:1883 if it answers, else embedded

Several brokers (the nodes of one clustered broker) are given as a list, comma-separated
in one string or as separate strings (see :func:`parse_broker_list`)::

    mqtt://node-a:1883,mqtt://node-b:1883,mqtts://user:pw@node-c:8883

Each URL carries its own scheme, credentials and options. The keywords ``embedded`` and
``auto`` stand for one local broker and are accepted only alone, never inside a list:
failing over between brokers only makes sense when they share topics (a cluster), and an
in-process broker shares nothing with any other.

TLS options can be given as query parameters (``?ca=/etc/ca.pem&cert=...&key=...&insecure=1``)
or as keyword arguments to :func:`parse_broker_url`.

Credentials may come from the URL or from the environment (see
:func:`with_env_credentials`). A password is held as a :class:`Secret`
and never appears in ``repr()``, ``str()`` or log lines; :meth:`BrokerSpec.redacted`
gives the URL with the password replaced by ``***``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from spikestream_client.errors import ConfigError
from spikestream_client.files import UnreadableFile, read_small_text

__all__ = [
    "AUTO_HOST",
    "AUTO_PORT",
    "ENV_PASSWORD",
    "ENV_PASSWORD_FILE",
    "ENV_USERNAME",
    "BrokerKind",
    "BrokerSpec",
    "ProtocolChoice",
    "Scheme",
    "Secret",
    "TlsOptions",
    "load_broker_spec",
    "load_broker_specs",
    "parse_broker_list",
    "parse_broker_url",
    "redacted_list",
    "with_env_credentials",
]

Scheme = Literal["mqtt", "mqtts", "ws", "wss"]
BrokerKind = Literal["url", "embedded", "auto"]
#: MQTT protocol version to use: ``"auto"`` tries 5 and falls back to 3.1.1.
ProtocolChoice = Literal["auto", "5", "3.1.1"]
_PROTOCOLS: tuple[ProtocolChoice, ...] = ("auto", "5", "3.1.1")

#: Environment variable holding the broker user name.
ENV_USERNAME = "SPIKESTREAM_MQTT_USERNAME"
#: Environment variable holding the broker password (prefer the file variant).
ENV_PASSWORD = "SPIKESTREAM_MQTT_PASSWORD"
#: Environment variable naming a file whose content is the password (Docker/K8s secrets).
ENV_PASSWORD_FILE = "SPIKESTREAM_MQTT_PASSWORD_FILE"
#: Largest password file read, bytes: MQTT's password field holds 65535 bytes, plus a
#: trailing CRLF.
PASSWORD_FILE_MAX_BYTES = 65_535 + 2

#: Where ``auto`` looks for an already running broker before starting the embedded one.
AUTO_HOST = "127.0.0.1"
AUTO_PORT = 1883

_DEFAULT_PORTS: dict[str, int] = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}
_TLS_SCHEMES = frozenset({"mqtts", "wss"})
_WS_SCHEMES = frozenset({"ws", "wss"})
_DEFAULT_WS_PATH = "/mqtt"
_KEYWORDS = ("embedded", "auto")
_EXPECTED = (
    "expected mqtt://[user[:password]@]host[:port], mqtts://..., ws://..., wss://..., "
    "'embedded' or 'auto'"
)
_QUERY_KEYS = ("ca", "cert", "key", "insecure", "protocol")
#: Words a switch takes for on and off (a URL's ``insecure=``, and the service's settings
#: that are switches or values, such as ``ha_discovery``), compared lowercased.
TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})


class Secret:
    """A password that ``repr()``, ``str()``, formatting and logging never show.

    Compared and hashed by its value, as the broker settings that hold it are. Not a
    dataclass, so ``dataclasses.astuple`` of those settings keeps it whole, masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The clear text, for handing to the MQTT client only. Never log it."""
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"


@dataclass(frozen=True)
class TlsOptions:
    """TLS settings for ``mqtts://`` and ``wss://``.

    Attributes:
        ca_file: PEM bundle of the CA(s) to trust (pins the broker's CA); ``None`` uses the
            system trust store.
        cert_file: PEM client certificate for mutual TLS (may also hold the key).
        key_file: PEM private key for ``cert_file``.
        insecure: Skip certificate and host name verification. Off by default; only for
            tests and lab setups, never in production.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.key_file is not None and self.cert_file is None:
            msg = (
                f"TLS key file {self.key_file} given without a client certificate; "
                "expected cert too"
            )
            raise ConfigError(msg)


@dataclass(frozen=True, repr=False)
class BrokerSpec:
    """Where and how to reach an MQTT broker. Immutable; safe to log (passwords redacted).

    Attributes:
        kind: ``"url"`` for a concrete broker address, ``"embedded"`` or ``"auto"`` for the
            keywords (resolve those with :func:`spikestream.transport.resolve_broker`).
        scheme: URL scheme; decides TLS and TCP vs WebSocket.
        host: Host name or IP address (no brackets for IPv6).
        port: TCP port (1..65535; 0 only for ``embedded`` meaning "any free port").
        username: User name, or ``None`` for anonymous.
        password: Password as a secret, or ``None``.
        tls: TLS options; set exactly when the scheme is ``mqtts`` or ``wss``.
        ws_path: HTTP path of the WebSocket endpoint (``ws``/``wss`` only).
        protocol: MQTT version to speak (``?protocol=`` in the URL): ``"auto"`` tries
            MQTT 5 and falls back to 3.1.1, ``"5"`` or ``"3.1.1"`` force one.
    """

    kind: BrokerKind
    scheme: Scheme
    host: str
    port: int
    username: str | None = None
    password: Secret | None = None
    tls: TlsOptions | None = None
    ws_path: str | None = None
    protocol: ProtocolChoice = "auto"

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is wrapped in TLS."""
        return self.scheme in _TLS_SCHEMES

    @property
    def transport(self) -> Literal["tcp", "websockets"]:
        """The paho transport name for this scheme."""
        return "websockets" if self.scheme in _WS_SCHEMES else "tcp"

    def password_value(self) -> str | None:
        """The clear-text password, for handing to the MQTT client only. Never log it."""
        return None if self.password is None else self.password.get_secret_value()

    def redacted(self) -> str:
        """The broker as a URL with the password replaced by ``***`` (safe for logs)."""
        if self.kind != "url":
            return self.kind
        userinfo = ""
        if self.username is not None:
            userinfo = quote(self.username, safe="")
            if self.password is not None:
                userinfo += ":***"
            userinfo += "@"
        host = f"[{quote(self.host, safe=':')}]" if ":" in self.host else self.host
        path = (self.ws_path or "") if self.scheme in _WS_SCHEMES else ""
        query = "" if self.protocol == "auto" else f"?protocol={self.protocol}"
        return f"{self.scheme}://{userinfo}{host}:{self.port}{path}{query}"

    def with_credentials(self, username: str | None, password: str | None) -> BrokerSpec:
        """A copy with other credentials (``None`` removes them)."""
        secret = None if password is None else Secret(password)
        return dataclasses.replace(self, username=username, password=secret)

    def __repr__(self) -> str:
        # Deliberately hand-written: the generated repr would show every field, and this
        # one must stay safe to log whatever a field's own repr shows.
        tls = "" if self.tls is None else f", tls={self.tls!r}"
        return f"BrokerSpec({self.redacted()!r}{tls})"

    def __str__(self) -> str:
        return self.redacted()


def parse_broker_url(
    url: str,
    *,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    insecure: bool | None = None,
) -> BrokerSpec:
    """Parse a broker URL or one of the keywords ``embedded`` / ``auto``.

    Args:
        url: The address, e.g. ``mqtt://user:pw@broker.local:1883``.
        ca_file: TLS CA bundle (overrides the ``ca`` query parameter).
        cert_file: TLS client certificate (overrides ``cert``).
        key_file: TLS client key (overrides ``key``).
        insecure: Disable TLS verification (overrides ``insecure``).

    Returns:
        The parsed, immutable :class:`BrokerSpec`. Files are not opened here.

    Raises:
        ConfigError: The URL is malformed; the message names the accepted forms and
            repeats what arrived (with any password masked).
    """
    text = url.strip()
    keyword = text.lower()
    tls_kwargs_given = any(v is not None for v in (ca_file, cert_file, key_file, insecure))
    if keyword in _KEYWORDS:
        if tls_kwargs_given:
            msg = (
                f"TLS options do not apply to broker {keyword!r}; "
                "expected an mqtts:// or wss:// URL"
            )
            raise ConfigError(msg)
        if keyword == "embedded":
            return BrokerSpec(kind="embedded", scheme="mqtt", host="127.0.0.1", port=0)
        return BrokerSpec(kind="auto", scheme="mqtt", host=AUTO_HOST, port=AUTO_PORT)

    shown = _mask_password(text)
    if "://" not in text:
        msg = f"bad broker URL {shown!r}: {_EXPECTED}"
        raise ConfigError(msg)
    if any(c in text for c in "\t\r\n"):
        # urlsplit drops them without a word: "h\tost" would become another host.
        msg = f"broker URL {shown!r} holds a tab or a line break: expected none"
        raise ConfigError(msg)
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. unbalanced IPv6 brackets
        msg = f"bad broker URL {shown!r} ({exc}): {_EXPECTED}"
        raise ConfigError(msg) from None
    echo = _Echo(shown, "@" in text[text.find("://") + 3 + len(parts.netloc) :])
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        msg = f"unsupported scheme {parts.scheme!r} in broker URL {shown!r}: {_EXPECTED}"
        raise ConfigError(msg)
    host = parts.hostname
    if not host:
        msg = f"broker URL {shown!r} has no host: {_EXPECTED}"
        raise ConfigError(msg)
    if "," in host:
        msg = (
            f"broker URL {shown!r} has host {echo(host)}: expected one host name or address "
            "(brokers in a list are separated by commas, each with its own scheme: "
            f"mqtt://a:1883,mqtt://b:1883){echo.hint}"
        )
        raise ConfigError(msg)
    host = _checked_host(host, echo)
    try:
        port = parts.port
    except ValueError:
        msg = f"broker URL {shown!r} has a bad port: expected an integer in 1..65535"
        raise ConfigError(msg + echo.hint) from None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif not 1 <= port <= 65535:
        msg = (
            f"broker URL {shown!r} has port {'(withheld)' if echo.pasted else port}: "
            "expected an integer in "
            f"1..65535{echo.hint}"
        )
        raise ConfigError(msg)
    if parts.fragment:
        msg = f"broker URL {shown!r} has a fragment {echo('#' + parts.fragment)}: expected none"
        raise ConfigError(msg + echo.hint)

    ws_path: str | None = None
    if scheme in _WS_SCHEMES:
        ws_path = parts.path or _DEFAULT_WS_PATH
    elif parts.path not in ("", "/"):
        msg = (
            f"broker URL {shown!r} has a path {echo(parts.path)}: expected none for "
            f"{scheme}:// (paths are only meaningful for ws:// and wss://){echo.hint}"
        )
        raise ConfigError(msg)

    query = _parse_query(parts.query, echo)
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username == "":
        username = None
        if password is not None:
            msg = f"broker URL {shown!r} has a password but no user name: expected user:password@"
            raise ConfigError(msg)

    tls: TlsOptions | None = None
    given_ca = ca_file if ca_file is not None else query.get("ca")
    given_cert = cert_file if cert_file is not None else query.get("cert")
    given_key = key_file if key_file is not None else query.get("key")
    given_insecure = insecure if insecure is not None else _parse_bool(query.get("insecure"), echo)
    if scheme in _TLS_SCHEMES:
        tls = TlsOptions(
            ca_file=_path_or_none(given_ca),
            cert_file=_path_or_none(given_cert),
            key_file=_path_or_none(given_key),
            insecure=bool(given_insecure),
        )
    elif any(v is not None for v in (given_ca, given_cert, given_key, given_insecure)):
        msg = (
            f"TLS options given for plain-text broker URL {shown!r}: expected an mqtts:// or "
            "wss:// URL when ca/cert/key/insecure are set"
        )
        raise ConfigError(msg)

    return BrokerSpec(
        kind="url",
        scheme=scheme,  # type: ignore[arg-type]  # checked against _DEFAULT_PORTS above
        host=host,
        port=port,
        username=username,
        password=None if password is None else Secret(password),
        tls=tls,
        ws_path=ws_path,
        protocol=_parse_protocol(query.get("protocol"), echo),
    )


# A comma separates two brokers only where the next one begins (a scheme or a keyword), so
# a comma inside a password or a query value stays part of its URL.
_LIST_SEPARATOR = re.compile(r"\s*,\s*(?=(?:[a-z][a-z0-9+.-]*://|embedded\b|auto\b|$))", re.I)


def parse_broker_list(
    urls: str | Sequence[str],
    *,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    insecure: bool | None = None,
) -> tuple[BrokerSpec, ...]:
    """Parse one broker or several (a cluster's nodes, tried in order, failed over).

    Args:
        urls: One string (URLs separated by commas) or several strings (each of which
            may itself hold a comma-separated list), e.g. from a repeated ``--broker``.
        ca_file, cert_file, key_file, insecure: TLS options applied to every
            ``mqtts://``/``wss://`` URL of the list (see :func:`parse_broker_url`).

    Returns:
        The specs in the order given (at least one).

    Raises:
        ConfigError: An empty list or entry, a malformed URL (named, password masked),
            the same broker twice, ``embedded``/``auto`` inside a list of several, or
            TLS options when no URL of the list uses TLS.
    """
    texts = [urls] if isinstance(urls, str) else list(urls)
    items: list[str] = []
    for text in texts:
        for item in _LIST_SEPARATOR.split(text.strip()):
            if not item.strip():
                msg = (
                    f"empty entry in broker list {_mask_list(text)!r}: expected URLs "
                    "separated by single commas"
                )
                raise ConfigError(msg)
            items.append(item.strip())
    if not items:
        msg = f"no broker given: {_EXPECTED}"
        raise ConfigError(msg)
    tls_given = any(v is not None for v in (ca_file, cert_file, key_file, insecure))
    if len(items) == 1:
        return (
            parse_broker_url(
                items[0], ca_file=ca_file, cert_file=cert_file, key_file=key_file, insecure=insecure
            ),
        )
    specs: list[BrokerSpec] = []
    for item in items:
        if item.lower() in _KEYWORDS:
            msg = (
                f"broker {item.lower()!r} cannot be part of a list of {len(items)} brokers: a "
                "list names the nodes of one clustered broker (mqtt://, mqtts://, ws://, "
                f"wss:// URLs), while {item.lower()!r} means one local broker; give it alone"
            )
            raise ConfigError(msg)
        tls_item = urlsplit(item).scheme.lower() in _TLS_SCHEMES if "://" in item else False
        specs.append(
            parse_broker_url(
                item,
                ca_file=ca_file if tls_item else None,
                cert_file=cert_file if tls_item else None,
                key_file=key_file if tls_item else None,
                insecure=insecure if tls_item else None,
            )
        )
    if tls_given and not any(s.uses_tls for s in specs):
        msg = (
            "TLS options given but no broker in the list uses TLS: expected at least one "
            "mqtts:// or wss:// URL"
        )
        raise ConfigError(msg)
    seen: set[tuple[str, str, int, str | None]] = set()
    for spec in specs:
        key = (spec.scheme, spec.host.lower(), spec.port, spec.ws_path)
        if key in seen:
            msg = f"broker {spec.redacted()!r} is listed twice: expected each node once"
            raise ConfigError(msg)
        seen.add(key)
    return tuple(specs)


def redacted_list(specs: Sequence[BrokerSpec]) -> str:
    """The brokers as comma-separated URLs with passwords replaced by ``***``."""
    return ",".join(spec.redacted() for spec in specs)


def with_env_credentials(spec: BrokerSpec, env: Mapping[str, str]) -> BrokerSpec:
    """Fill in credentials from the environment mapping ``env`` (pass ``os.environ``).

    Precedence: credentials written in the URL win; the environment fills what is missing.
    ``SPIKESTREAM_MQTT_USERNAME`` gives the user name; the password comes from the file
    named by ``SPIKESTREAM_MQTT_PASSWORD_FILE`` (one trailing newline stripped) or from
    ``SPIKESTREAM_MQTT_PASSWORD``. Setting both password variables is an error, as is a
    password without any user name.

    Raises:
        ConfigError: Conflicting variables, unreadable or empty password file. The message
            names the variables and file, never the password.
    """
    env_user = env.get(ENV_USERNAME) or None
    env_password = env.get(ENV_PASSWORD)
    env_file = env.get(ENV_PASSWORD_FILE) or None
    if env_password is not None and env_file is not None:
        msg = f"both {ENV_PASSWORD} and {ENV_PASSWORD_FILE} are set: expected at most one of them"
        raise ConfigError(msg)

    username = spec.username if spec.username is not None else env_user
    password: str | None = spec.password_value()
    if password is None:
        if env_file is not None:
            password = _read_password_file(env_file)
        elif env_password is not None:
            password = env_password
    if password is not None and username is None:
        msg = (
            f"a broker password is set but no user name: expected user@ in the URL or "
            f"{ENV_USERNAME} in the environment"
        )
        raise ConfigError(msg)
    if username == spec.username and password == spec.password_value():
        return spec
    return spec.with_credentials(username, password)


def load_broker_spec(url: str, env: Mapping[str, str] | None = None) -> BrokerSpec:
    """:func:`parse_broker_url` followed by :func:`with_env_credentials` (``os.environ``
    when ``env`` is ``None``)."""
    return with_env_credentials(parse_broker_url(url), os.environ if env is None else env)


def load_broker_specs(
    urls: str | Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[BrokerSpec, ...]:
    """:func:`parse_broker_list` followed by :func:`with_env_credentials` on every entry
    (credentials written in a URL win; the environment fills in the others)."""
    source = os.environ if env is None else env
    return tuple(with_env_credentials(spec, source) for spec in parse_broker_list(urls))


def _mask_list(text: str) -> str:
    return ",".join(_mask_password(part) for part in _LIST_SEPARATOR.split(text.strip()))


def _read_password_file(path: str) -> str:
    """The password in the file ``path`` (its text, less one trailing newline).

    The path comes from the environment, so it is read by
    :func:`~spikestream_client.files.read_small_text`: only a regular file of at most
    :data:`PASSWORD_FILE_MAX_BYTES`.
    """
    shown = f"{ENV_PASSWORD_FILE}={path!r}"
    expected = f"expected a readable UTF-8 file of at most {PASSWORD_FILE_MAX_BYTES} bytes"
    try:
        text = read_small_text(path, PASSWORD_FILE_MAX_BYTES)
    except UnreadableFile as err:
        reason = {
            "os": err.detail,
            "special": "not a regular file (a folder, FIFO or device)",
            "large": "it is too large",
            "encoding": "it is not UTF-8 text",
        }[err.kind]
        raise ConfigError(f"cannot read {shown}: {reason}; {expected}") from None
    # Secret files are usually written with a trailing newline (echo, editors); the
    # password itself never ends in one.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        msg = f"{ENV_PASSWORD_FILE}={path!r} is empty: expected the password in it"
        raise ConfigError(msg)
    return text


def _parse_query(query: str, echo: _Echo) -> dict[str, str]:
    shown = echo.shown
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        msg = f"broker URL {shown!r} has a malformed query: expected key=value pairs"
        raise ConfigError(msg + echo.hint) from None
    result: dict[str, str] = {}
    for key, value in pairs:
        if key not in _QUERY_KEYS:
            msg = (
                f"unknown query parameter {echo(key)} in broker URL {shown!r}: expected one "
                f"of {', '.join(_QUERY_KEYS)}{echo.hint}"
            )
            raise ConfigError(msg)
        if key in result:
            msg = f"query parameter {key!r} repeated in broker URL {shown!r}: expected it once"
            raise ConfigError(msg)
        result[key] = value
    return result


def _parse_bool(value: str | None, echo: _Echo) -> bool | None:
    if value is None:
        return None
    low = value.lower()
    if low in TRUE_WORDS or low == "":
        return True
    if low in FALSE_WORDS:
        return False
    msg = (
        f"insecure={echo(value)} in broker URL {echo.shown!r}: expected one of 1, 0, true, "
        f"false, yes, no{echo.hint}"
    )
    raise ConfigError(msg)


def _parse_protocol(value: str | None, echo: _Echo) -> ProtocolChoice:
    if value is None:
        return "auto"
    for choice in _PROTOCOLS:
        if value == choice:
            return choice
    msg = (
        f"protocol={echo(value)} in broker URL {echo.shown!r}: expected one of "
        f"{', '.join(_PROTOCOLS)}{echo.hint}"
    )
    raise ConfigError(msg)


def _path_or_none(value: str | Path | None) -> Path | None:
    if value is None or value == "":
        return None
    return Path(value)


_HOST_MAX = 253
"""The longest DNS name, in characters (RFC 1035, without the final dot)."""


@dataclass(frozen=True, slots=True)
class _Echo:
    """How an error repeats the pieces of a broker URL.

    A password pasted without percent-encoding may hold ``/``, ``?`` or ``#``: urlsplit
    then ends the authority inside it, and the rest of it becomes the host, port, path,
    query or fragment that an error would repeat. When an ``@`` lies past the authority
    (``pasted``), those pieces are withheld and the message says why; ``shown`` is the
    whole URL with its password masked.
    """

    shown: str
    pasted: bool

    def __call__(self, piece: str) -> str:
        return "(withheld)" if self.pasted else repr(piece)

    @property
    def hint(self) -> str:
        if not self.pasted:
            return ""
        return (
            "; parts of the URL are withheld: an '@' after its host suggests a password "
            "holding / ? or # pasted without percent-encoding (%2F, %3F, %23)"
        )


def _checked_host(host: str, echo: _Echo) -> str:
    """``host`` as the socket layer takes it, or a ConfigError naming what is wrong.

    A space, a control character, a ``%`` escape or a name past 253 characters (a final
    dot aside) would only fail at the first connection, as "Name or service not known"
    after the backoff. An IPv6 address's zone is written ``%25`` in a URL (RFC 6874:
    ``[fe80::1%25eth0]``), or raw as ``ip`` prints it (``[fe80::1%eth0]``, ``%12``); only
    the ``%25`` separator is decoded, never the zone itself.
    """
    shown = echo.shown
    if len(host.rstrip(".")) > _HOST_MAX:
        msg = (
            f"broker URL {shown[:80]!r}... has a host of {len(host)} characters: expected "
            f"at most {_HOST_MAX}{echo.hint}"
        )
        raise ConfigError(msg)
    if "%" in host:
        address, _, zone = host.partition("%")
        if ":" not in address:  # not an IPv6 address: a name the resolver would not decode
            msg = (
                f"broker URL {shown!r} has host {echo(host)}: expected a name without % "
                f"escapes{echo.hint}"
            )
            raise ConfigError(msg)
        if zone.startswith("25") and len(zone) > 2:
            zone = zone[2:]  # RFC 6874's encoded separator
        if not zone:
            msg = f"broker URL {shown!r} has an IPv6 zone that is empty: expected [addr%25zone]"
            raise ConfigError(msg)
        host = f"{address}%{zone}"
    if any(not c.isprintable() or c.isspace() for c in host):
        msg = (
            f"broker URL {shown!r} has host {echo(host)}: expected no spaces or control "
            f"characters{echo.hint}"
        )
        raise ConfigError(msg)
    return host


def _mask_password(text: str) -> str:
    """Mask the password of a (possibly malformed) URL before echoing it in an error.

    A password pasted without percent-encoding may hold ``/``, ``?`` or ``#``, which end
    the authority early (urlsplit then reads ``user:pa`` as host and port), so the user
    info is taken up to the last ``@`` of the whole text, not of the authority: an ``@``
    in a path or query over-masks the echo, never leaks a password.
    """
    scheme_end = text.find("://")
    if scheme_end < 0:
        return text
    rest_start = scheme_end + 3
    at = text.rfind("@", rest_start)
    if at < 0:
        return text
    userinfo = text[rest_start:at]
    if ":" not in userinfo:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{text[:rest_start]}{user}:***{text[at:]}"
