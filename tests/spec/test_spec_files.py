"""Network files as hostile input: only a regular file of bounded size is read, and every
value must have the TOML type its key takes (no quiet ``true`` -> 1 or ``"50"`` -> 50)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from spikestream.errors import NetworkFileError
from spikestream.spec import NETWORK_FILE_MAX_BYTES, load_network, parse_network
from tests.capped import run_capped

EXAMPLES = Path(__file__).parents[2] / "examples"

# Loads a network file in a child with its address space capped: without the checks,
# /dev/zero is read until memory runs out and a FIFO blocks for ever, and the cap and the
# timeout turn both into a failure instead of a stalled machine or suite.
_CHILD = """
import sys
from spikestream.errors import NetworkFileError
from spikestream.spec import load_network
try:
    load_network(sys.argv[1])
except NetworkFileError as err:
    print(err)
    sys.exit(2)
"""


def _load_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    return run_capped(_CHILD, str(path))


def test_a_device_is_refused_before_it_is_read() -> None:
    done = _load_in_child(Path("/dev/zero"))
    assert (done.returncode, done.stdout.strip()) == (
        2,
        "/dev/zero: not a regular file (a folder, FIFO or device); expected a network file",
    ), done.stderr[-500:]


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    done = _load_in_child(fifo)  # a TimeoutExpired here is the old hang
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stdout.strip() == (
        f"{fifo}: not a regular file (a folder, FIFO or device); expected a network file"
    )


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match=r"not a regular file .*expected a network file"):
        load_network(tmp_path)


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as fh:  # a valid network, padded past the cap with a comment
        fh.write(b"[populations.a]\nn = 2\n#")
        fh.truncate(NETWORK_FILE_MAX_BYTES + 1)
    with pytest.raises(NetworkFileError) as info:
        load_network(big)
    assert str(info.value) == (
        f"{big}: larger than {NETWORK_FILE_MAX_BYTES} bytes; expected a network file of at "
        f"most {NETWORK_FILE_MAX_BYTES}"
    )


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[populations.a]\nn = 2 # \xff\n")
    with pytest.raises(NetworkFileError, match=r"bad\.toml: network file is not UTF-8 text"):
        load_network(bad)


BASE = """
[network]
name = "t"
dt = 0.001
seed = 3
[populations.a]
n = 5
tau_rc = 0.02
max_rates = [200, 400]
[inputs.u]
target = "a"
[[connections]]
pre = "u"
post = "a"
synapse = 0.1
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # Each of these ran before: true became a 1 s synapse, n = true one neuron, and
        # the strings were parsed as numbers.
        (
            "synapse = 0.1",
            "synapse = true",
            "connections[0].synapse: Input should be a valid number (got True)",
        ),
        ("n = 5", "n = true", "populations.a.n: Input should be a valid integer (got True)"),
        ("n = 5", 'n = "50"', "populations.a.n: Input should be a valid integer (got '50')"),
        ("dt = 0.001", 'dt = "0.001"', "network.dt: Input should be a valid number (got '0.001')"),
        ("seed = 3", "seed = true", "network.seed: Input should be a valid integer (got True)"),
        ("n = 5", "n = 5.5", "populations.a.n: Input should be a valid integer (got 5.5)"),
        (
            "max_rates = [200, 400]",
            "max_rates = [true, 400]",
            "populations.a.max_rates[0]: Input should be a valid number (got True)",
        ),
        ('target = "a"', "target = 1", "inputs.u.target: Input should be a valid string (got 1)"),
    ],
)
def test_a_value_of_the_wrong_toml_type_is_refused(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in BASE
    path = tmp_path / "net.toml"
    path.write_text(textwrap.dedent(BASE).replace(old, new, 1))
    with pytest.raises(NetworkFileError) as info:
        load_network(path)
    assert str(info.value) == f"{path}: {message}"


def test_an_integer_still_stands_for_a_number(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    text = BASE.replace("tau_rc = 0.02", "tau_rc = 1\ntau_ref = 0").replace("0.1", "1")
    path.write_text(text.replace("max_rates = [200, 400]", "max_rates = [200, 400]\nradius = 2"))
    spec = load_network(path)
    pop = spec.populations["a"]
    assert (pop.tau_rc, pop.tau_ref, pop.radius, pop.max_rates) == (1, 0, 2, (200, 400))
    assert spec.connections[0].synapse == 1
    assert isinstance(pop.tau_rc, float)


def test_a_whole_float_stands_for_a_count(tmp_path: Path) -> None:
    # As a flag or a setting may be written 1e3; 5.5 stays refused (above).
    path = tmp_path / "net.toml"
    path.write_text(textwrap.dedent(BASE).replace("n = 5", "n = 5e1\nseed = 3.0", 1))
    pop = load_network(path).populations["a"]
    assert (pop.n, pop.seed) == (50, 3)
    assert isinstance(pop.n, int)


def test_python_mappings_with_tuples_still_validate() -> None:
    # parse_network also takes mappings built in Python (tests, the Nengo importer).
    spec = parse_network({"populations": {"a": {"n": 3, "intercepts": (-0.5, 0.5)}}})
    assert spec.populations["a"].intercepts == (-0.5, 0.5)


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.rglob("*.toml")), ids=lambda p: str(p.relative_to(EXAMPLES))
)
def test_every_example_network_loads(path: Path) -> None:
    assert load_network(path).populations


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        # Each was a traceback from the build: os.open's "embedded null byte", and
        # expanduser's "Could not determine home directory".
        ("connections[0].weights.file", "w\x00.npy", "without NUL; got 'w\\x00.npy'"),
        ("populations.a.max_rates", "r\x00.npy", "without NUL"),
        ("populations.a.encoders", "", "a non-empty string"),
        ("probes.p.decoders", "d\x00.npy", "without NUL"),
        ("inputs.u.signal.path", "~nosuchuser-x/u.npy", "home folder of 'nosuchuser-x'"),
        ("connections[0].decoders", "~nosuchuser-x/d.npy", "a user this machine does not have"),
    ],
)
def test_a_file_path_that_names_no_file_is_refused_by_its_key(
    where: str, value: str, words: str
) -> None:
    data: dict[str, object] = {
        "populations": {"a": {"n": 5}, "b": {"n": 5}},
        "inputs": {"u": {"target": "a", "signal": {"kind": "file", "path": "u.npy"}}},
        "connections": [{"pre": "a", "post": "b"}],
        "probes": {"p": {"target": "a", "kind": "decoded"}},
    }
    section, _, rest = where.partition(".")
    if section.startswith("connections"):
        key = rest
        table: dict[str, object] = data["connections"][0]  # type: ignore[index]
    else:
        name, _, key = rest.partition(".")
        table = data[section][name]  # type: ignore[index]
    if key == "weights.file":
        table["weights"] = {"file": value}
    elif key == "signal.path":
        table["signal"] = {"kind": "file", "path": value}
    else:
        table[key] = value
    with pytest.raises(NetworkFileError) as info:
        parse_network(data)
    message = str(info.value)
    assert message.startswith(f"<network>: {where}: expected a file path"), message
    assert words in message


def test_a_file_path_longer_than_path_max_is_refused_with_a_glimpse() -> None:
    """No file system opens a path past PATH_MAX characters, and the build's error echoed
    a megabyte-long one whole: it is refused as the file is read, quoted in part."""
    from spikestream.spec import PATH_MAX

    def spec(path: str) -> dict[str, object]:
        return {
            "populations": {"a": {"n": 5}, "b": {"n": 5}},
            "connections": [{"pre": "a", "post": "b", "weights": {"file": path}}],
        }

    assert parse_network(spec("w" * PATH_MAX)).connections[0].weights is not None
    with pytest.raises(NetworkFileError) as info:
        parse_network(spec("w" * 1_000_000))
    message = str(info.value)
    assert message.startswith(
        "<network>: connections[0].weights.file: a path of 1000000 characters is not allowed; "
        f"expected at most {PATH_MAX}"
    ), message
    assert len(message) < 300
    with pytest.raises(NetworkFileError, match="a path of 4097 characters"):
        parse_network(spec("w" * (PATH_MAX + 1)))
