/* Programs checked against their address table once, when built (check_program), and
 * run offline (run_program); the checks of arguments every entry point shares.
 * This file is included by _native.c only, in the place of the section it holds: it
 * uses what the lines above its #include define. */

/* The opcode's name, for error messages. */
static const char *op_name(int64_t code)
{
    static const char *names[] = {"FEED",     "COPY",     "ADD",     "ENCODE",
                                  "LIF",      "EVENTS",   "DECODED", "FILTERED",
                                  "LOWPASS_DECODED", "RECORD", "RECORD_BOOL", "ENCODE_H",
                                  "EVENTS_H", "DECODED_H", "LOWPASS_DECODED_H"};
    return (code >= 0 && code <= OP_LOWPASS_DECODED_H) ? names[code] : "?";
}

/* Sets ValueError and returns -1 unless every op of the program is well formed, with fed
 * and recorded blocks holding rows up to stop. */
static int check_program(const int64_t *program, int64_t n_ops, const int64_t *table,
                         int64_t n_table, int64_t n_scalars, int64_t n_counts, int64_t stop)
{
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
        case OP_ENCODE_H:
            slots[0] = 1; slots[1] = 2; slots[2] = 3; n_slots = 3; scalar_col = 5; break;
        case OP_LIF:
            for (int c = 1; c <= 7; c++) slots[n_slots++] = c;
            scalar_col = 8; count_col = 9; break;
        case OP_EVENTS: case OP_EVENTS_H:
            slots[0] = 1; slots[1] = 2; slots[2] = 3; n_slots = 3;
            count_col = 4; scalar_col = 5; break;
        case OP_DECODED: case OP_DECODED_H:
            slots[0] = 1; slots[1] = 3; slots[2] = 4; slots[3] = 5; slots[4] = 6;
            slots[5] = 8; n_slots = 6; count_col = 2; scalar_col = 7; break;
        case OP_FILTERED:
            slots[0] = 1; slots[1] = 2; n_slots = 2; scalar_col = 3; break;
        case OP_LOWPASS_DECODED: case OP_LOWPASS_DECODED_H:
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
            if (table[slot * 3 + T_ROWS] < 0 || table[slot * 3 + T_COLS] < 0) {
                PyErr_Format(PyExc_ValueError,
                             "program row %lld (%s): array %lld has a negative shape in the "
                             "table", (long long)r, op_name(code), (long long)slot);
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
        case OP_ENCODE: case OP_ENCODE_H:
            ok = R(2) == R(1) && C(2) == R(3) && R(3) >= 1; break;
        case OP_LIF:
            for (int c = 2; c <= 7; c++) ok &= R(c) == R(1);
            break;
        case OP_EVENTS: case OP_EVENTS_H:
            ok = C(2) == R(1) && R(2) >= R(3); break; /* rows cover every spiker index */
        case OP_DECODED: case OP_DECODED_H:
            /* spikers (n_pre,), decoders (n_pre, d), y (d,), enc_t (d, n), current (n,),
             * acc (d,): decoder rows cover every spiker index. */
            ok = C(3) == R(4) && R(3) >= R(1) && R(5) == R(4) && C(5) == R(6) && R(8) == R(4);
            break;
        case OP_LOWPASS_DECODED: case OP_LOWPASS_DECODED_H:
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
        /* A wrong type or an int past 64 bits is worded; anything else (MemoryError from
         * an __index__, say) is raised as it came. */
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s: expected an int in [-2**63, 2**63); got %R",
                         what, obj);
        } else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: expected an int; got %.80s", what,
                         Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    *out = (int64_t)value;
    return 0;
}

/* The eleven arguments of check_program and run_program: a program's nine (addresses
 * and sizes, then the float32 flag) and the ticks start, stop. */
/* Check that fn got `want` arguments and read the first `ints` of them as integers into
 * v, naming the one that is not (names: at least `ints` entries). */
static int int_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, Py_ssize_t ints,
                    const char *fn, const char *const *names, int64_t *v)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments; got %zd", fn, want, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < ints; i++)
        if (as_i64(args[i], &v[i], names[i]) < 0)
            return -1;
    return 0;
}

static int program_args(PyObject *const *args, Py_ssize_t nargs, const char *fn, int64_t v[11])
{
    static const char *const names[] = {"program", "n_ops", "table", "n_table", "scalars",
                                        "n_scalars", "counts", "n_counts", "float32", "start",
                                        "stop"};
    if (int_args(args, nargs, 11, 11, fn, names, v) < 0)
        return -1;
    if (v[9] < 0 || v[10] < v[9]) {
        PyErr_Format(PyExc_ValueError, "ticks %lld .. %lld: expected 0 <= start <= stop",
                     (long long)v[9], (long long)v[10]);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(check_program_doc,
"check_program(program, n_ops, table, n_table, scalars, n_scalars, counts, n_counts,\n"
"              float32, start, stop)\n"
"--\n\n"
"Raise ValueError unless the program fits its table (opcodes, slots, shapes, constants\n"
"rows, count slots) and its fed and recorded blocks hold rows up to stop. Programs and\n"
"tables do not change after they are built, so a caller checks once, at build time,\n"
"and then runs the program as often as it likes (run_program, tick).");

static PyObject *py_check_program(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[11];
    if (program_args(args, nargs, "check_program", v) < 0)
        return NULL;
    if (check_program((const int64_t *)(intptr_t)v[0], v[1], (const int64_t *)(intptr_t)v[2],
                      v[3], v[5], v[7], v[10]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(run_program_doc,
"run_program(program, n_ops, table, n_table, scalars, n_scalars, counts, n_counts,\n"
"            float32, start, stop)\n"
"--\n\n"
"Run ticks start .. stop-1 of a program with the GIL released.\n\n"
"program, table, scalars and counts are data addresses of C-contiguous arrays the\n"
"caller keeps alive: int64 (n_ops, 10), int64 (n_table, 3), (n_scalars, 8) in the\n"
"state dtype (float32 when float32 is true, else float64) and int64 (n_counts,).\n"
"The caller has passed the same arguments to check_program, with a stop at least\n"
"this one.");

static PyObject *run_program(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[11];
    if (program_args(args, nargs, "run_program", v) < 0)
        return NULL;
    const int64_t *program = (const int64_t *)(intptr_t)v[0];
    const int64_t *table = (const int64_t *)(intptr_t)v[2];
    int64_t *counts = (int64_t *)(intptr_t)v[6];
    Py_BEGIN_ALLOW_THREADS
    if (v[8])
        run_program_f32(program, v[1], table, (const float *)(intptr_t)v[4], counts, v[9], v[10]);
    else
        run_program_f64(program, v[1], table, (const double *)(intptr_t)v[4], counts, v[9],
                        v[10]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}
