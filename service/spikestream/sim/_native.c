/* spikestream.sim._native: the fused program interpreter in C.
 *
 * What spikestream/sim/jit.py's run_program does, as a CPython extension that loads in
 * about a millisecond: numba's import and the loading of cached kernels cost about half
 * a second at every start (issue 13), which is more than a short offline run steps for.
 * Results are bit for bit those of the numba kernels (tests/sim/test_native.py).
 *
 * run_program takes integers only: the data addresses of the program, the address
 * table, the constants and the spike counts, which the Python side (sim/program.py)
 * takes from arrays it allocated at build time and keeps alive. Before stepping, the
 * program is checked against the table (opcodes, slots, shapes, the rows of fed and
 * recorded blocks), so a malformed program raises ValueError instead of writing out of
 * bounds. The ticks run with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>

/* Opcodes, program columns, table columns and constants: sim/opcodes.py (a test reads
 * both files and fails if they disagree). */
#define OP_FEED 0
#define OP_COPY 1
#define OP_ADD 2
#define OP_ENCODE 3
#define OP_LIF 4
#define OP_EVENTS 5
#define OP_DECODED 6
#define OP_FILTERED 7
#define OP_LOWPASS_DECODED 8
#define OP_RECORD 9
#define OP_RECORD_BOOL 10
#define PROGRAM_COLUMNS 10
#define T_ADDRESS 0
#define T_ROWS 1
#define T_COLS 2
#define C_DT 0
#define C_TAU_RC 1
#define C_TAU_REF 2
#define C_MIN_VOLTAGE 3
#define C_FULL 4
#define C_ZERO 5
#define C_ONE 6
#define C_NEG_TAU_RC 7

/* Each kernel is compiled twice on x86-64 and the better one picked at load time: for
 * x86-64-v3 (AVX2: eight float32 or four float64 per instruction), as numba compiles for
 * the host, and for the baseline (SSE2) the compiler assumes by default. Without FMA
 * contraction, both round every operation alike, so results do not depend on the CPU. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

#define REAL double
#define NAME(x) x##_f64
#define EXPM1 expm1
#define LOG1P log1p
#include "_native_program.h"
#undef REAL
#undef NAME
#undef EXPM1
#undef LOG1P

#define REAL float
#define NAME(x) x##_f32
#define EXPM1 expm1f
#define LOG1P log1pf
#include "_native_program.h"
#undef REAL
#undef NAME
#undef EXPM1
#undef LOG1P

/* The opcode's name, for error messages. */
static const char *op_name(int64_t code)
{
    static const char *names[] = {"FEED",     "COPY",     "ADD",     "ENCODE",
                                  "LIF",      "EVENTS",   "DECODED", "FILTERED",
                                  "LOWPASS_DECODED", "RECORD", "RECORD_BOOL"};
    return (code >= 0 && code <= OP_RECORD_BOOL) ? names[code] : "?";
}

/* Sets ValueError and returns -1 unless every op of the program is well formed. */
static int check_program(const int64_t *program, int64_t n_ops, const int64_t *table,
                         int64_t n_table, int64_t n_scalars, int64_t n_counts, int64_t start,
                         int64_t stop)
{
    if (start < 0 || stop < start) {
        PyErr_Format(PyExc_ValueError, "ticks %lld .. %lld: expected 0 <= start <= stop",
                     (long long)start, (long long)stop);
        return -1;
    }
    for (int64_t r = 0; r < n_ops; r++) {
        const int64_t *op = program + r * PROGRAM_COLUMNS;
        const int64_t code = op[0];
        int slots[PROGRAM_COLUMNS];
        int n_slots = 0, scalar_col = -1, count_col = -1;
        switch (code) {
        case OP_FEED: case OP_COPY: case OP_ADD: case OP_RECORD: case OP_RECORD_BOOL:
            slots[0] = 1; slots[1] = 2; n_slots = 2; break;
        case OP_ENCODE:
            slots[0] = 1; slots[1] = 2; slots[2] = 3; n_slots = 3; break;
        case OP_LIF:
            for (int c = 1; c <= 7; c++) slots[n_slots++] = c;
            scalar_col = 8; count_col = 9; break;
        case OP_EVENTS:
            slots[0] = 1; slots[1] = 2; slots[2] = 3; n_slots = 3;
            count_col = 4; scalar_col = 5; break;
        case OP_DECODED:
            slots[0] = 1; slots[1] = 3; slots[2] = 4; slots[3] = 5; slots[4] = 6;
            slots[5] = 8; n_slots = 6; count_col = 2; scalar_col = 7; break;
        case OP_FILTERED:
            slots[0] = 1; slots[1] = 2; n_slots = 2; scalar_col = 3; break;
        case OP_LOWPASS_DECODED:
            slots[0] = 1; slots[1] = 3; slots[2] = 4; slots[3] = 5; n_slots = 4;
            count_col = 2; scalar_col = 6; break;
        default:
            PyErr_Format(PyExc_ValueError, "program row %lld: unknown opcode %lld",
                         (long long)r, (long long)code);
            return -1;
        }
        for (int s = 0; s < n_slots; s++) {
            int64_t slot = op[slots[s]];
            if (slot < 0 || slot >= n_table) {
                PyErr_Format(PyExc_ValueError,
                             "program row %lld (%s): column %d names array %lld; expected "
                             "0 <= slot < %lld",
                             (long long)r, op_name(code), slots[s], (long long)slot,
                             (long long)n_table);
                return -1;
            }
        }
        if (scalar_col >= 0 && (op[scalar_col] < 0 || op[scalar_col] >= n_scalars)) {
            PyErr_Format(PyExc_ValueError,
                         "program row %lld (%s): constants row %lld; expected 0 <= row < %lld",
                         (long long)r, op_name(code), (long long)op[scalar_col],
                         (long long)n_scalars);
            return -1;
        }
        if (count_col >= 0 && (op[count_col] < 0 || op[count_col] >= n_counts)) {
            PyErr_Format(PyExc_ValueError,
                         "program row %lld (%s): count slot %lld; expected 0 <= slot < %lld",
                         (long long)r, op_name(code), (long long)op[count_col],
                         (long long)n_counts);
            return -1;
        }
        /* Shapes: (rows, cols) of table slot s. */
#define R(col) table[op[col] * 3 + T_ROWS]
#define C(col) table[op[col] * 3 + T_COLS]
        int ok = 1;
        switch (code) {
        case OP_COPY: case OP_ADD: case OP_FILTERED:
            ok = R(2) == R(1); break;
        case OP_FEED: case OP_RECORD: case OP_RECORD_BOOL: {
            /* The block is column 2 for FEED (x = block[k]), column 1 for RECORD. */
            int block = code == OP_FEED ? 2 : 1, vec = code == OP_FEED ? 1 : 2;
            ok = C(block) == R(vec) && stop <= R(block);
            break;
        }
        case OP_ENCODE:
            ok = R(2) == R(1) && C(2) == R(3) && R(3) >= 1; break;
        case OP_LIF:
            for (int c = 2; c <= 7; c++) ok &= R(c) == R(1);
            break;
        case OP_EVENTS:
            ok = C(2) == R(1) && R(2) >= R(3); break; /* rows cover every spiker index */
        case OP_DECODED:
            /* spikers (n_pre,), decoders (n_pre, d), y (d,), enc_t (d, n), current (n,),
             * acc (d,): decoder rows cover every spiker index. */
            ok = C(3) == R(4) && R(3) >= R(1) && R(5) == R(4) && C(5) == R(6) && R(8) == R(4);
            break;
        case OP_LOWPASS_DECODED:
            ok = C(3) == R(4) && R(3) >= R(1) && R(5) == R(4); break;
        }
#undef R
#undef C
        if (!ok) {
            PyErr_Format(PyExc_ValueError,
                         "program row %lld (%s): operand shapes do not fit together (or "
                         "ticks up to %lld exceed a fed or recorded block)",
                         (long long)r, op_name(code), (long long)stop);
            return -1;
        }
    }
    return 0;
}

static int as_i64(PyObject *obj, int64_t *out, const char *what)
{
    long long value = PyLong_AsLongLong(obj);
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected an int; got %.80s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = (int64_t)value;
    return 0;
}

PyDoc_STRVAR(run_program_doc,
"run_program(program, n_ops, table, n_table, scalars, n_scalars, counts, n_counts,\n"
"            float32, start, stop)\n"
"--\n\n"
"Run ticks start .. stop-1 of a program with the GIL released.\n\n"
"program, table, scalars and counts are data addresses of C-contiguous arrays the\n"
"caller keeps alive: int64 (n_ops, 10), int64 (n_table, 3), (n_scalars, 8) in the\n"
"state dtype (float32 when float32 is true, else float64) and int64 (n_counts,).\n"
"Raises ValueError if the program does not fit its table.");

static PyObject *run_program(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    static const char *names[] = {"program", "n_ops", "table", "n_table", "scalars",
                                  "n_scalars", "counts", "n_counts", "float32", "start",
                                  "stop"};
    int64_t v[11];
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "run_program takes 11 arguments; got %zd", nargs);
        return NULL;
    }
    for (int i = 0; i < 11; i++)
        if (as_i64(args[i], &v[i], names[i]) < 0)
            return NULL;
    const int64_t *program = (const int64_t *)(intptr_t)v[0];
    const int64_t *table = (const int64_t *)(intptr_t)v[2];
    int64_t *counts = (int64_t *)(intptr_t)v[6];
    if (check_program(program, v[1], table, v[3], v[5], v[7], v[9], v[10]) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (v[8])
        run_program_f32(program, v[1], table, (const float *)(intptr_t)v[4], counts, v[9], v[10]);
    else
        run_program_f64(program, v[1], table, (const double *)(intptr_t)v[4], counts, v[9],
                        v[10]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"run_program", (PyCFunction)(void (*)(void))run_program, METH_FASTCALL, run_program_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The fused program interpreter in C (see spikestream.sim.native).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "PROGRAM_COLUMNS", PROGRAM_COLUMNS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
