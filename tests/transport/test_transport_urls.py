"""Broker URL parsing, credentials from the environment, and password redaction."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream.errors import ConfigError
from spikestream_client.transport import (
    ENV_PASSWORD,
    ENV_PASSWORD_FILE,
    ENV_USERNAME,
    BrokerSpec,
    TlsOptions,
    load_broker_spec,
    load_broker_specs,
    parse_broker_list,
    parse_broker_url,
    redacted_list,
    with_env_credentials,
)


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "transport", "tls", "ws_path"),
    [
        ("mqtt://localhost", "mqtt", "localhost", 1883, "tcp", False, None),
        ("mqtt://broker.lan:1884", "mqtt", "broker.lan", 1884, "tcp", False, None),
        ("mqtt://10.0.0.2:1883/", "mqtt", "10.0.0.2", 1883, "tcp", False, None),
        ("MQTT://Host.Example", "mqtt", "host.example", 1883, "tcp", False, None),
        ("mqtt://[::1]:1999", "mqtt", "::1", 1999, "tcp", False, None),
        ("mqtts://broker.example", "mqtts", "broker.example", 8883, "tcp", True, None),
        ("mqtts://broker.example:9883", "mqtts", "broker.example", 9883, "tcp", True, None),
        ("ws://localhost", "ws", "localhost", 80, "websockets", False, "/mqtt"),
        ("ws://localhost:9001/", "ws", "localhost", 9001, "websockets", False, "/"),
        ("wss://h:443/custom/path", "wss", "h", 443, "websockets", True, "/custom/path"),
        ("  mqtt://padded:1  ", "mqtt", "padded", 1, "tcp", False, None),
    ],
)
def test_url_forms(
    url: str,
    scheme: str,
    host: str,
    port: int,
    transport: str,
    tls: bool,
    ws_path: str | None,
) -> None:
    spec = parse_broker_url(url)
    assert spec.kind == "url"
    assert (spec.scheme, spec.host, spec.port) == (scheme, host, port)
    assert spec.transport == transport
    assert spec.uses_tls is tls
    assert (spec.tls is not None) is tls
    assert spec.ws_path == ws_path
    assert spec.username is None
    assert spec.password is None
    assert spec.protocol == "auto"


def test_tls_defaults_verify() -> None:
    spec = parse_broker_url("mqtts://broker.example")
    assert spec.tls == TlsOptions(ca_file=None, cert_file=None, key_file=None, insecure=False)


def test_tls_options_from_query_and_keywords(tmp_path: Path) -> None:
    spec = parse_broker_url("mqtts://b?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem&insecure=yes")
    assert spec.tls == TlsOptions(Path("/etc/ca.pem"), Path("/c.pem"), Path("/k.pem"), True)
    # Keyword arguments override the query.
    spec = parse_broker_url("wss://b?insecure=1", ca_file=tmp_path / "ca.pem", insecure=False)
    assert spec.tls == TlsOptions(ca_file=tmp_path / "ca.pem", insecure=False)


@pytest.mark.parametrize("keyword", ["embedded", "auto", " Auto ", "EMBEDDED"])
def test_keywords(keyword: str) -> None:
    spec = parse_broker_url(keyword)
    assert spec.kind == keyword.strip().lower()
    assert spec.redacted() == spec.kind
    if spec.kind == "auto":
        assert (spec.host, spec.port) == ("127.0.0.1", 1883)
    else:
        assert spec.port == 0


@pytest.mark.parametrize("protocol", ["auto", "5", "3.1.1"])
def test_protocol_query(protocol: str) -> None:
    spec = parse_broker_url(f"mqtt://h?protocol={protocol}")
    assert spec.protocol == protocol


def test_credentials_in_url_are_percent_decoded() -> None:
    spec = parse_broker_url("mqtt://us%40er:p%3Aw%2Fd%20x@host:1883")
    assert spec.username == "us@er"
    assert spec.password_value() == "p:w/d x"


@given(
    user=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
    password=st.text(min_size=0, max_size=30),
)
def test_credentials_round_trip_any_text(user: str, password: str) -> None:
    url = f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@h:1"
    spec = parse_broker_url(url)
    assert spec.username == user
    assert spec.password_value() == password


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", r"bad broker URL '': expected mqtt://"),
        (
            "localhost:1883",
            r"bad broker URL 'localhost:1883': expected mqtt://.*'embedded' or 'auto'",
        ),
        ("http://host", r"unsupported scheme 'http' in broker URL 'http://host': expected mqtt://"),
        ("tcp://host:1883", r"unsupported scheme 'tcp'.*mqtts://\.\.\., ws://\.\.\., wss://"),
        ("mqtt://", r"broker URL 'mqtt://' has no host: expected mqtt://"),
        ("mqtt://:1883", r"has no host"),
        ("mqtt://host:99999", r"bad port: expected an integer in 1\.\.65535"),
        ("mqtt://host:0", r"has port 0: expected an integer in 1\.\.65535"),
        ("mqtt://host:abc", r"bad port: expected an integer"),
        ("mqtt://host/topic", r"has a path '/topic': expected none for mqtt://"),
        ("mqtt://host#frag", r"has a fragment '#frag': expected none"),
        ("mqtt://[::1", r"bad broker URL 'mqtt://\[::1'"),
        (
            "mqtt://host?ca=/x.pem",
            r"TLS options given for plain-text broker URL.*expected an mqtts://",
        ),
        (
            "mqtts://host?colour=red",
            r"unknown query parameter 'colour'.*expected one of ca, cert, key",
        ),
        ("mqtts://host?ca=a&ca=b", r"query parameter 'ca' repeated"),
        ("mqtts://host?insecure=maybe", r"insecure='maybe'.*expected one of 1, 0, true, false"),
        ("mqtt://host?protocol=4", r"protocol='4'.*expected one of auto, 5, 3\.1\.1"),
        ("mqtt://:secret@host", r"has a password but no user name"),
        ("mqtts://host?key=/k.pem", r"TLS key file /k\.pem given without a client certificate"),
    ],
)
def test_bad_urls_say_what_was_expected(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_broker_url(url)


def test_config_error_is_also_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        parse_broker_url("ftp://host")


def test_tls_keywords_rejected_for_keywords() -> None:
    with pytest.raises(ConfigError, match=r"TLS options do not apply to broker 'embedded'"):
        parse_broker_url("embedded", ca_file="/ca.pem")


def test_error_messages_mask_the_password() -> None:
    with pytest.raises(ConfigError, match=r"'ftp://bob:\*\*\*@host'") as info:
        parse_broker_url("ftp://bob:hunter2@host")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_broker_url("mqtt://bob:hunter2@host:notaport")
    assert "hunter2" not in str(info.value)


def test_password_never_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    spec = parse_broker_url("mqtts://bob:hunter2@broker.example:8883")
    assert spec.redacted() == "mqtts://bob:***@broker.example:8883"
    assert str(spec) == spec.redacted()
    assert f"{spec}" == spec.redacted()
    secret = spec.password
    for text in (repr(spec), str(spec), repr(secret), str(secret), f"{secret}", repr([spec])):
        assert "hunter2" not in text
    assert "%s %r" % (secret, secret) == "********** Secret('**********')"  # noqa: UP031
    assert "hunter2" not in repr(dataclasses.astuple(spec))
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("connecting to %s (%r)", spec, spec)
    assert "bob:***@broker.example" in caplog.text
    assert "hunter2" not in caplog.text
    assert spec.password_value() == "hunter2"


def test_redacted_forms() -> None:
    assert parse_broker_url("mqtt://h").redacted() == "mqtt://h:1883"
    assert parse_broker_url("mqtt://bob@h").redacted() == "mqtt://bob@h:1883"
    assert parse_broker_url("ws://h:9001").redacted() == "ws://h:9001/mqtt"
    assert parse_broker_url("mqtt://[::1]").redacted() == "mqtt://[::1]:1883"
    assert parse_broker_url("mqtt://h?protocol=5").redacted() == "mqtt://h:1883?protocol=5"
    assert parse_broker_url("mqtt://a%40b:x@h").redacted() == "mqtt://a%40b:***@h:1883"


def test_an_ipv6_zone_is_decoded_for_the_socket_and_encoded_again_when_shown() -> None:
    """RFC 6874: a link-local broker's zone is written ``%25`` in a URL. Kept encoded, the
    resolver knows no such host; decoded, it names the interface."""
    spec = parse_broker_url("mqtt://[fe80::1%25lo]:1884")
    assert spec.host == "fe80::1%lo"
    assert socket.getaddrinfo(spec.host, spec.port, type=socket.SOCK_STREAM)[0][4][3] > 0
    assert spec.redacted() == "mqtt://[fe80::1%25lo]:1884"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("mqtt://[fe80::1%25eth0]", "fe80::1%eth0"),  # RFC 6874
        ("mqtt://[fe80::1%2512]", "fe80::1%12"),
        ("mqtt://[fe80::1%eth0]", "fe80::1%eth0"),  # raw, as `ip` prints it
        ("mqtt://[fe80::1%12]", "fe80::1%12"),  # not the escape %12, a control character
        ("mqtt://[fe80::1%31]", "fe80::1%31"),  # not the escape %31, fe80::11
        ("mqtt://[fe80::a%62]", "fe80::a%62"),
        ("mqtt://[fe80::1%25]", "fe80::1%25"),  # interface 25, raw
    ],
)
def test_only_the_zone_separator_is_decoded(url: str, host: str) -> None:
    """Decoding the whole host read a raw zone starting with two hex digits as an escape:
    ``%31`` made the host another address, ``%12`` a control character."""
    spec = parse_broker_url(url)
    assert spec.host == host
    assert parse_broker_url(spec.redacted()).host == host  # it shows what it connects to


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://user:1234?protocol=sEcReT@host",
        "mqtt://user:1234?insecure=sEcReT@host",
        "mqtt://user:1234?sEcReT=y@host",
        "mqtt://user:p@sEcReT et/x@host",
        "mqtt://user:p@sEcReT%et/x@host",
        "mqtt://user:p@sEcReT,et/x@host",
        "mqtt://user:p@sEcReT/x@host",
        "mqtt://user:12#sEcReT@host",
        "mqtt://bob:99999/sEcReT@host",
        "mqtt://dom/user:sEcReT@host",
        "mqtts://hub.example/dev1/?api-version=2021:SharedAccessSignature%20sig=sEcReT@hub.example",
    ],
)
def test_no_error_repeats_a_piece_of_a_password_pasted_unencoded(url: str) -> None:
    """Past an '@' after the host may lie a password holding / ? or #: urlsplit then reads
    pieces of it as the host, port, path, query or fragment, which the errors repeated.
    They are withheld, and the message says why."""
    with pytest.raises(ConfigError) as info:
        parse_broker_url(url)
    message = str(info.value)
    assert "ecRe" not in message
    assert ":***@" in message
    if "dom/user" not in url and "hub.example" not in url:
        assert "withheld" in message
        assert "%2F, %3F, %23" in message


def test_an_at_in_a_query_value_still_parses() -> None:
    """A CA file's path may hold an '@': such a URL still parses whole."""
    spec = parse_broker_url("mqtts://broker:8883?ca=/certs/me@corp.pem")
    assert spec.tls is not None
    assert str(spec.tls.ca_file) == "/certs/me@corp.pem"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mqtt://bad%20host:1883", "host 'bad%20host': expected a name without % escapes"),
        ("mqtt://ex%00ample", "host 'ex%00ample': expected a name without % escapes"),
        ("mqtt://tab\there:1883", r"'mqtt://tab\there:1883' holds a tab or a line break"),
        ("mqtt://h:1883\n", None),  # at an end it is stripped, as spaces are
        ("mqtt://bob:pw\n2@h:1883", r"'mqtt://bob:***@h:1883' holds a tab or a line break"),
        ("mqtt://bell\x07:1883", "expected no spaces or control characters"),
        ("mqtt://" + "a" * 254 + ":1883", "has a host of 254 characters: expected at most 253"),
    ],
)
def test_a_host_the_resolver_could_never_find_is_refused_at_once(
    url: str, match: str | None
) -> None:
    """Such a host parsed, then failed at every connection attempt as "Name or service not
    known", after the backoff, far from the flag that named it."""
    if match is None:
        assert parse_broker_url(url).host == "h"
        return
    with pytest.raises(ConfigError, match=re.escape(match)):
        parse_broker_url(url)
    assert parse_broker_url("mqtt://" + "a" * 253 + ":1883").port == 1883
    assert parse_broker_url("mqtt://" + "a" * 253 + ".:1883").port == 1883  # a final dot


def test_spec_is_frozen_and_comparable() -> None:
    spec = parse_broker_url("mqtt://bob:pw@h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.port = 1  # type: ignore[misc]
    assert spec == parse_broker_url("mqtt://bob:pw@h")
    assert spec != parse_broker_url("mqtt://bob:other@h")
    assert hash(spec) == hash(parse_broker_url("mqtt://bob:pw@h"))
    assert spec.password != "pw"  # a secret equals only the same secret


# --- credentials from the environment --------------------------------------------------


def test_env_username_and_password() -> None:
    spec = with_env_credentials(
        parse_broker_url("mqtt://h"), {ENV_USERNAME: "alice", ENV_PASSWORD: "s3cret"}
    )
    assert spec.username == "alice"
    assert spec.password_value() == "s3cret"
    assert "s3cret" not in repr(spec)


def test_env_password_file_strips_one_newline(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret \n")
    spec = with_env_credentials(
        parse_broker_url("mqtt://h"), {ENV_USERNAME: "alice", ENV_PASSWORD_FILE: str(secret)}
    )
    assert spec.password_value() == "s3cret "
    secret.write_text("crlf\r\n")
    spec = with_env_credentials(
        parse_broker_url("mqtt://h"), {ENV_USERNAME: "alice", ENV_PASSWORD_FILE: str(secret)}
    )
    assert spec.password_value() == "crlf"


def test_url_credentials_win_and_env_fills_the_gap() -> None:
    env = {ENV_USERNAME: "env-user", ENV_PASSWORD: "env-pw"}
    spec = with_env_credentials(parse_broker_url("mqtt://url-user:url-pw@h"), env)
    assert (spec.username, spec.password_value()) == ("url-user", "url-pw")
    # User in the URL, password kept out of it (and out of `ps`).
    spec = with_env_credentials(parse_broker_url("mqtt://url-user@h"), {ENV_PASSWORD: "pw"})
    assert (spec.username, spec.password_value()) == ("url-user", "pw")


def test_empty_environment_changes_nothing() -> None:
    spec = parse_broker_url("mqtt://h")
    assert with_env_credentials(spec, {}) is spec


def test_env_username_alone_is_fine() -> None:
    spec = with_env_credentials(parse_broker_url("mqtt://h"), {ENV_USERNAME: "alice"})
    assert spec.username == "alice"
    assert spec.password is None


def test_env_both_password_variables_is_an_error(tmp_path: Path) -> None:
    env = {ENV_USERNAME: "a", ENV_PASSWORD: "x", ENV_PASSWORD_FILE: str(tmp_path / "pw")}
    with pytest.raises(ConfigError, match=f"both {ENV_PASSWORD} and {ENV_PASSWORD_FILE} are set"):
        with_env_credentials(parse_broker_url("mqtt://h"), env)


def test_env_password_without_user_is_an_error() -> None:
    with pytest.raises(
        ConfigError, match=f"no user name: expected user@ in the URL or {ENV_USERNAME}"
    ):
        with_env_credentials(parse_broker_url("mqtt://h"), {ENV_PASSWORD: "x"})


def test_env_password_file_missing_or_empty(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    env = {ENV_USERNAME: "a", ENV_PASSWORD_FILE: str(missing)}
    with pytest.raises(ConfigError, match=r"cannot read SPIKESTREAM_MQTT_PASSWORD_FILE=.*nope"):
        with_env_credentials(parse_broker_url("mqtt://h"), env)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    env = {ENV_USERNAME: "a", ENV_PASSWORD_FILE: str(empty)}
    with pytest.raises(ConfigError, match=r"is empty: expected the password in it"):
        with_env_credentials(parse_broker_url("mqtt://h"), env)


def test_load_broker_spec_reads_the_given_environment() -> None:
    spec = load_broker_spec("mqtt://h:2000", {ENV_USERNAME: "u", ENV_PASSWORD: "p"})
    assert isinstance(spec, BrokerSpec)
    assert (spec.port, spec.username, spec.password_value()) == (2000, "u", "p")


def test_load_broker_spec_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_USERNAME, "from-os")
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    monkeypatch.delenv(ENV_PASSWORD_FILE, raising=False)
    assert load_broker_spec("mqtt://h").username == "from-os"


# --- broker lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "mqtt://a:1883,mqtt://b:1884,mqtts://u:pw@c",
        "mqtt://a:1883 , mqtt://b:1884,  mqtts://u:pw@c",
        ["mqtt://a:1883", "mqtt://b:1884", "mqtts://u:pw@c"],
        ["mqtt://a:1883,mqtt://b:1884", "mqtts://u:pw@c"],
    ],
)
def test_broker_list_in_order_each_with_its_own_scheme_and_credentials(
    given: str | list[str],
) -> None:
    specs = parse_broker_list(given)
    assert [s.redacted() for s in specs] == [
        "mqtt://a:1883",
        "mqtt://b:1884",
        "mqtts://u:***@c:8883",
    ]
    assert specs[2].password_value() == "pw"
    assert redacted_list(specs) == "mqtt://a:1883,mqtt://b:1884,mqtts://u:***@c:8883"


def test_a_comma_inside_a_password_stays_in_its_url() -> None:
    specs = parse_broker_list("mqtt://u:p,w@a,mqtt://b")
    assert [s.host for s in specs] == ["a", "b"]
    assert specs[0].password_value() == "p,w"


def test_tls_options_apply_to_the_tls_brokers_of_a_list(tmp_path: Path) -> None:
    specs = parse_broker_list("mqtt://a,mqtts://b", ca_file=tmp_path / "ca.pem")
    assert specs[0].tls is None
    assert specs[1].tls is not None
    assert specs[1].tls.ca_file == tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match="no broker in the list uses TLS"):
        parse_broker_list("mqtt://a,mqtt://b", ca_file=tmp_path / "ca.pem")


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ("mqtt://a,embedded", r"'embedded' cannot be part of a list of 2 brokers"),
        ("auto,mqtt://a", r"'auto' cannot be part of a list of 2 brokers.*give it alone"),
        ("mqtt://a,mqtt://a:1883", r"'mqtt://a:1883' is listed twice"),
        ("mqtt://a,", r"empty entry in broker list"),
        ("", r"empty entry in broker list"),
        ("mqtt://a,b:1883", r"has host 'a,b'.*each with its own scheme"),
        ("mqtt://a,ftp://b", r"unsupported scheme 'ftp'"),
        ("mqtt://a,mqtt://bob:hunter2@b:x", r"bad port"),
    ],
)
def test_bad_broker_lists_say_what_was_expected(given: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_broker_list(given)
    assert "hunter2" not in str(info.value)


def test_keywords_alone_are_still_accepted() -> None:
    assert [s.kind for s in parse_broker_list("embedded")] == ["embedded"]
    assert [s.kind for s in parse_broker_list(["auto"])] == ["auto"]


def test_list_credentials_from_the_environment_fill_each_entry() -> None:
    env = {ENV_USERNAME: "svc", ENV_PASSWORD: "s3cret"}
    specs = load_broker_specs("mqtt://a,mqtt://own:pw@b", env)
    assert [(s.username, s.password_value()) for s in specs] == [("svc", "s3cret"), ("own", "pw")]


# --- cases a mutation audit found unpinned -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "port"),
    [("wss://h", 443), ("mqtt://h:65535", 65535), ("ws://h:1", 1)],
)
def test_default_and_extreme_ports(url: str, port: int) -> None:
    """``wss://`` without a port must reach 443 (the only default no other case pinned),
    and 65535 is a valid port: rejecting the top of the range would refuse real brokers."""
    assert parse_broker_url(url).port == port


@pytest.mark.parametrize(
    ("query", "insecure"),
    [
        ("insecure=on", True),
        ("insecure=ON", True),
        ("insecure=True", True),
        ("insecure=", True),
        ("insecure=off", False),
        ("insecure=No", False),
    ],
)
def test_insecure_takes_every_switch_word_in_any_case(query: str, insecure: bool) -> None:
    """``insecure`` takes the same words as the service's other switches, lowercased: a
    ``?insecure=OFF`` read as an error, or ``on`` not understood, breaks a working config."""
    tls = parse_broker_url(f"mqtts://h?{query}").tls
    assert tls is not None
    assert tls.insecure is insecure


@pytest.mark.parametrize("query", ["insecure=1", "insecure=0", "cert=/c.pem", "ca="])
def test_any_tls_query_on_a_plain_url_is_refused(query: str) -> None:
    """``mqtt://h?insecure=0`` names a TLS option on a connection without TLS: the user
    believes TLS is in play, so even a switch set to off (or an empty path) is an error."""
    with pytest.raises(ConfigError, match="TLS options given for plain-text broker URL"):
        parse_broker_url(f"mqtt://h?{query}")


def test_keyword_arguments_override_every_query_file(tmp_path: Path) -> None:
    """A flag (``--tls-ca`` and the like) must win over the URL for each of the three files,
    not only the CA: otherwise the key from a stale URL is paired with the flag's cert."""
    spec = parse_broker_url(
        "mqtts://h?ca=/q/ca.pem&cert=/q/c.pem&key=/q/k.pem",
        ca_file=tmp_path / "ca.pem",
        cert_file=tmp_path / "c.pem",
        key_file=tmp_path / "k.pem",
    )
    assert spec.tls == TlsOptions(tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem")


def test_an_empty_ca_means_the_system_store() -> None:
    """``?ca=`` (a template with an unset variable) must mean "no CA file", not the
    current folder ``.`` handed to OpenSSL."""
    tls = parse_broker_url("mqtts://h?ca=&cert=").tls
    assert tls == TlsOptions()


def test_a_fresh_tls_options_verifies() -> None:
    """Verification is on unless asked off: the default every caller without a URL gets."""
    assert TlsOptions().insecure is False


@pytest.mark.parametrize("url", ["mqtts://h?ca", "mqtts://h?ca=/x&&key=/k", "mqtts://h?insecure"])
def test_a_query_without_key_value_pairs_is_refused(url: str) -> None:
    """A bare ``?insecure`` is not ``insecure=1``: a query that is not key=value pairs is
    refused, so no word slips through half-parsed."""
    with pytest.raises(ConfigError, match="has a malformed query: expected key=value pairs"):
        parse_broker_url(url)


def test_redacted_keeps_an_empty_password_masked_and_the_forced_protocol() -> None:
    """The redacted form must not tell that a password is empty (``bob:***`` either way),
    and must show every forced protocol, 3.1.1 included, or logs of two setups look alike."""
    assert parse_broker_url("mqtt://bob:@h").redacted() == "mqtt://bob:***@h:1883"
    assert parse_broker_url("mqtt://h?protocol=3.1.1").redacted() == "mqtt://h:1883?protocol=3.1.1"


@pytest.mark.parametrize(
    ("url", "secret_parts"),
    [
        ("mqtt://bob:hun@ter2@host:x", ("hun", "ter2")),
        ("mqtt://bob:pass:word@host:x", ("pass", "word")),
    ],
)
def test_an_unencoded_at_or_colon_in_a_password_stays_masked(
    url: str, secret_parts: tuple[str, ...]
) -> None:
    """Users paste passwords without percent-encoding them: a raw ``@`` or ``:`` in the
    password must not split it so that a part of it reaches the error message."""
    with pytest.raises(ConfigError, match=r"'mqtt://bob:\*\*\*@host:x'") as info:
        parse_broker_url(url)
    for part in secret_parts:
        assert part not in str(info.value)


def test_a_password_without_a_user_is_masked_in_the_error() -> None:
    """The refusal of ``mqtt://:secret@host`` echoes the URL: the password must be masked
    there too, though there is no user name before the colon."""
    with pytest.raises(ConfigError, match=r"'mqtt://:\*\*\*@host'") as info:
        parse_broker_url("mqtt://:secret@host")
    assert "secret" not in str(info.value)


def test_empty_environment_variables_count_as_unset(tmp_path: Path) -> None:
    """Compose files and unit files often write ``VAR=`` for "not set": an empty user name
    must not become a user, and an empty password-file variable must neither clash with
    the password variable nor be opened as a path."""
    spec = parse_broker_url("mqtt://h")
    assert with_env_credentials(spec, {ENV_USERNAME: ""}) is spec
    env = {ENV_USERNAME: "a", ENV_PASSWORD: "x", ENV_PASSWORD_FILE: ""}
    filled = with_env_credentials(spec, env)
    assert (filled.username, filled.password_value()) == ("a", "x")


def test_websocket_paths_tell_brokers_of_a_list_apart() -> None:
    """Two WebSocket endpoints on one host and port differ by their path: they are two
    entries, not one listed twice."""
    specs = parse_broker_list("ws://h:9001/a,ws://h:9001/b")
    assert [s.ws_path for s in specs] == ["/a", "/b"]


def test_a_keyword_in_any_case_is_refused_inside_a_list() -> None:
    """``EMBEDDED`` alone is the embedded broker, so in a list it is the same mistake as
    ``embedded``; it must not slip in as a node of a cluster."""
    with pytest.raises(ConfigError, match=r"'embedded' cannot be part of a list of 2 brokers"):
        parse_broker_list("mqtt://a,EMBEDDED")


def test_an_empty_entry_error_masks_the_passwords_of_the_list() -> None:
    """The empty-entry refusal echoes the whole list as given: each URL's password in it
    must be masked, as in every other broker error."""
    with pytest.raises(ConfigError, match=r"'mqtt://bob:\*\*\*@a,'") as info:
        parse_broker_list("mqtt://bob:hunter2@a,")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("protocol", ["50", "3.1.10", "5 ", "AUTO"])
def test_only_the_exact_protocol_words_are_accepted(protocol: str) -> None:
    """``protocol=50`` is a typo, not MQTT 5: only the three exact words are taken."""
    with pytest.raises(ConfigError, match=r"expected one of auto, 5, 3\.1\.1"):
        parse_broker_url(f"mqtt://h?protocol={quote(protocol)}")


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://bob:hunter#2@host",
        "mqtt://bob:hunter/2@host",
        "mqtt://bob:hunter?2@host",
        "mqtt://bob:12#hunter@host",
        "mqtt://bob:12/hunter@host",
    ],
)
def test_a_password_with_an_unencoded_delimiter_stays_masked(url: str) -> None:
    """A password pasted without percent-encoding may hold ``/``, ``?`` or ``#``, which end
    the host part early: urlsplit then reads ``bob:hunter`` as host and port, and the
    refusal echoes the URL (and its path or fragment). No part of the password may reach
    that message, which ends up on a terminal or in a log."""
    with pytest.raises(ConfigError) as info:
        parse_broker_url(url)
    assert "'mqtt://bob:***@host'" in str(info.value)
    assert "hunter" not in str(info.value)


def test_only_one_trailing_newline_of_a_password_file_is_stripped(tmp_path: Path) -> None:
    """The documented rule is one newline, not all of them: the file's author may mean a
    password that itself ends in a newline, and stripping more would change it silently."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n\n")
    spec = with_env_credentials(
        parse_broker_url("mqtt://h"), {ENV_USERNAME: "alice", ENV_PASSWORD_FILE: str(secret)}
    )
    assert spec.password_value() == "s3cret\n"
