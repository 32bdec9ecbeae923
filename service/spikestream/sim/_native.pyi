"""Types of the C extension ``spikestream.sim._native`` (see ``_native.c``)."""

PROGRAM_COLUMNS: int

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
