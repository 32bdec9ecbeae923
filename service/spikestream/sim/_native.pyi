"""Types of the C extension ``spikestream.sim._native`` (see ``_native.c``)."""

from typing import Any

import numpy.typing as npt

PROGRAM_COLUMNS: int
LOOP_COLUMNS: int
TIME_COLUMNS: int
ROW_HEADER_BYTES: int
MAX_WAIT: int

def run_program(
    program: int,
    n_ops: int,
    table: int,
    n_table: int,
    scalars: int,
    n_scalars: int,
    counts: int,
    n_counts: int,
    float32: int,
    start: int,
    stop: int,
    /,
) -> None: ...
def tick(
    program: int,
    n_ops: int,
    table: int,
    n_table: int,
    scalars: int,
    n_scalars: int,
    counts: int,
    n_counts: int,
    float32: int,
    inputs: int,
    n_inputs: int,
    state: int,
    ttl: int,
    deadline: float,
    spin: float,
    /,
) -> tuple[float, float]: ...
def post_input(
    state_row: int, mailbox: int, value: int, dim: int, received: float, expires: float, /
) -> int: ...
def sleep_until(deadline: float, spin: float, /) -> float: ...
def now() -> float: ...
def check_program(
    program: int,
    n_ops: int,
    table: int,
    n_table: int,
    scalars: int,
    n_scalars: int,
    counts: int,
    n_counts: int,
    float32: int,
    start: int,
    stop: int,
    /,
) -> None: ...
def run_ticks(
    program: int,
    n_ops: int,
    table: int,
    n_table: int,
    scalars: int,
    n_scalars: int,
    counts: int,
    n_counts: int,
    float32: int,
    inputs: int,
    n_inputs: int,
    state: int,
    ttl: int,
    loop: int,
    times: int,
    /,
) -> int: ...
def ring_take(loop: int, /) -> tuple[int, int]: ...
def ring_look(
    loop: int, state_offset: int, inputs: int, /
) -> tuple[int, int, int, int, int, int, float, float]: ...
def ring_done(loop: int, count: int, /) -> None: ...
def adapt_spin(loop: int, times: int, /) -> float: ...
def use_simd(wanted: bool, /) -> bool: ...
def record(kind: int, descriptor: int, a: float, b: float, c: float, /) -> None: ...
def stream_record(
    stream: int, value: npt.NDArray[Any], tick: int, t: float, late: float, wall: float, /
) -> bool: ...
def stream_flush(stream: int, wall: float, /) -> bool: ...
def stream_take(
    stream: int, /
) -> tuple[int, tuple[int, int, int, float, float, float, int]] | None: ...
def stream_take_legacy(stream: int, /) -> tuple[int, bool, int]: ...
def stream_release(stream: int, buffer: int, /) -> None: ...
def stream_count(stream: int, frames: int, /) -> None: ...
def streams_record(
    loop: int, table: int, n_streams: int, count: int, first: int, dt: float, /
) -> bool: ...
