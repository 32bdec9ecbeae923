"""``spikestream_client.plotting``: a malformed ``meta`` is refused in one line naming the
key, what it held and what was expected, from a file (``run --plot``) and from arrays in
memory (``record --plot``) alike. It was a JSONDecodeError, TypeError, KeyError or
AttributeError traceback."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream_client import plotting
from spikestream_client.errors import ConfigError
from spikestream_client.npz import header_arrays, layout_meta, time_of
from spikestream_client.plotting import plot_run, plot_run_file

DT = 0.001


def _good() -> dict[str, Any]:
    return layout_meta(
        network="m",
        dt=DT,
        dtype="float64",
        populations=["p"],
        inputs=[],
        probes={"v": "values"},
        source="run",
        ticks=5,
        first_tick=0,
        last_tick=4,
    )


def _with(**changes: Any) -> str:
    meta = _good()
    for key, value in changes.items():
        if value is _GONE:
            del meta[key]
        else:
            meta[key] = value
    return json.dumps(meta)


_GONE = object()

CASES = [
    ("{not json", r"it is not JSON \(JSONDecodeError: Expecting property name"),
    ("[" * 100_000 + "]" * 100_000, r"it is not JSON \(RecursionError: "),
    ("[1, 2]", r"it is an array; expected a JSON object$"),
    ('"meta"', r"it is a string; expected a JSON object$"),
    ("null", r"it is null; expected a JSON object$"),
    (_with(inputs=_GONE), r"its 'inputs' is missing; expected an array of strings$"),
    (_with(inputs={"u": 1}), r"its 'inputs' is an object; expected an array of strings$"),
    (_with(populations=None), r"its 'populations' is null; expected an array of strings$"),
    (_with(populations=["p", 3]), r"its 'populations' is an array holding a number; expected"),
    (_with(probes=["v"]), r"its 'probes' is an array; expected an object mapping each probe"),
    (_with(probes=_GONE), r"its 'probes' is missing; expected an object mapping each probe"),
    (_with(probes={"v": None}), r"its 'probes' is an object holding null; expected an object"),
    (_with(network={"a": 1}), r"its 'network' is an object; expected a string$"),
    (np.array(b"\xff{}"), r"it is not JSON \(UnicodeDecodeError: "),
    (np.array([_with()]), r"holds <U\d+ of shape \(1,\); expected one"),
]


def _arrays(meta: Any) -> dict[str, Any]:
    spikes = np.eye(5, 3, dtype=np.uint8)
    arrays = {"t": time_of(np.arange(5), DT), "v": np.zeros((5, 2)), "p.spikes": spikes}
    return {**arrays, **header_arrays(_good()), "meta": np.asarray(meta)}


def _file(path: Path, meta: Any) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for key, arr in _arrays(meta).items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
    return path


@pytest.mark.parametrize(("meta", "message"), CASES)
def test_a_malformed_meta_in_a_file_is_refused_in_one_line(
    tmp_path: Path, meta: Any, message: str
) -> None:
    npz = _file(tmp_path / "m.npz", meta)
    with pytest.raises(ConfigError, match=message) as err:
        plot_run_file(npz, tmp_path / "m.png")
    assert str(err.value).startswith(f"cannot plot {str(npz)!r}: member 'meta")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize(("meta", "message"), CASES)
def test_a_malformed_meta_in_memory_is_refused_in_one_line(
    tmp_path: Path, meta: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        plot_run(_arrays(meta), tmp_path / "m.png")
    assert str(err.value).startswith("cannot plot 'meta': ")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "m.png").exists()


def test_a_meta_of_another_dtype_in_memory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cannot plot 'meta': it holds int64 of shape \(\)"):
        plot_run(_arrays(np.int64(3)), tmp_path / "m.png")


@pytest.mark.parametrize("stored", ["bytes", "str"])
def test_a_meta_stored_as_bytes_or_str_is_read(tmp_path: Path, stored: str) -> None:
    """``meta`` as UTF-8 bytes (``np.savez(meta=b'{...}')``) is read like a string (it
    was parsed as the text ``b'{...}'``, a JSONDecodeError)."""
    text = _with(network="é")
    meta = np.array(text.encode()) if stored == "bytes" else np.array(text)
    assert plot_run_file(_file(tmp_path / "m.npz", meta), tmp_path / "f.png").exists()
    assert plot_run(_arrays(meta), tmp_path / "a.png").exists()


def test_a_meta_without_a_network_is_drawn(tmp_path: Path) -> None:
    """``network`` only makes the title: a ``meta`` without it (a file written elsewhere)
    is drawn, from a file and from memory, where the other keys are required."""
    meta = _with(network=_GONE)
    assert plot_run_file(_file(tmp_path / "m.npz", meta), tmp_path / "f.png").exists()
    assert plot_run(_arrays(meta), tmp_path / "a.png").exists()


def test_a_meta_longer_than_meta_max_bytes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``meta`` is read whole, so its size is bounded (a deflated file of a few KB may
    hold a string of gigabytes): one longer than META_MAX_BYTES is refused, naming the
    bound, before it is read."""
    text = _with()
    monkeypatch.setattr(plotting, "META_MAX_BYTES", 4 * len(text) - 1)  # str: 4 bytes a char
    npz = _file(tmp_path / "m.npz", text)
    with pytest.raises(
        ConfigError,
        match=rf"member 'meta' holds <U{len(text)} of shape \(\); expected one string of at "
        rf"most {4 * len(text) - 1:,} bytes$",
    ):
        plot_run_file(npz, tmp_path / "m.png")
    monkeypatch.setattr(plotting, "META_MAX_BYTES", 4 * len(text))  # the bound is inclusive
    assert plot_run_file(npz, tmp_path / "m.png").exists()
