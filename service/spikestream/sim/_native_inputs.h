/* The clock, the deadline wait and the input mailboxes; tick(), one live tick.
 * This file is included by _native.c only, in the place of the section it holds: it
 * uses what the lines above its #include define. */

/* ------------------------------------------------------------------ time and inputs */

/* CLOCK_MONOTONIC in seconds: the time line of time.perf_counter() on Linux (the
 * pacer's SystemClock), checked by tests/sim/test_native.py. */
static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The longest wait a deadline may ask for: a day. A realtime factor of 1e-300 would
 * otherwise give a deadline no time_t holds, and a tick thread spinning for ever without
 * the GIL; refused, it fails the engine as time.sleep's OverflowError does. */
#define MAX_WAIT 86400.0
#define MAX_WAIT_TEXT "86400"

static int deadline_ok(double deadline)
{
    return !isnan(deadline) && (deadline == -INFINITY || deadline - mono_now() <= MAX_WAIT);
}

/* Sleep until spin seconds before the deadline, then spin until it has passed (the
 * kernel wakes a sleeper about 0.1 ms late). Never returns before the deadline. */
/* A time on mono_now()'s line as the absolute timespec clock_nanosleep and futexes take. */
static struct timespec mono_timespec(double t)
{
    struct timespec ts;
    const double whole = floor(t);
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((t - whole) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    return ts;
}

static void sleep_until_mono(double deadline, double spin)
{
    double wake = deadline - spin;
    if (wake > mono_now()) {
        const struct timespec ts = mono_timespec(wake);
        /* Restarted after a signal: TIMER_ABSTIME makes that exact. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    while (mono_now() < deadline)
        ;
}

/* Rung (incremented, and its sleepers woken) by every post_input: a tick loop that
 * starts a tick early on input (L_EARLY) sleeps on it until its deadline. One for the
 * process: a post to another engine's input wakes the loop for nothing, and it sleeps
 * again once it finds its own mailboxes' numbers unchanged (wait_for_tick). */
static uint32_t input_bell, input_sleepers;

/* Input mailboxes. Per input, a row of the input table (int64):
 *   [mailbox, default, target, dim, scratch]
 * mailbox and scratch: float64 (2 + dim,) holding [received, expires, value...];
 * default: float64 (dim,); target: the simulator's input array (state dtype, dim).
 * Per input, a row of the state array (int64):
 *   [seq, applied, stale, flag, cleared]
 * seq: the mailbox's sequence lock, written by post_input only (odd while writing; a
 * message's number is its even value); applied: the number last copied into the target;
 * stale: 1 while the input runs on its default; flag: what the last tick did (0 nothing,
 * 1 a new value, 2 went stale, as runtime/slots.py's NEW_VALUE and WENT_STALE; bit 4, its
 * EXPIRED, when a message expired before any tick applied it: it is then "applied");
 * cleared: numbers up to this one are forgotten (a reset). ttl: float64 (n,), +inf for
 * none. */
enum { IN_MAILBOX, IN_DEFAULT, IN_TARGET, IN_DIM, IN_SCRATCH, IN_COLUMNS };
enum { ST_SEQ, ST_APPLIED, ST_STALE, ST_FLAG, ST_CLEARED, ST_COLUMNS };

/* A consistent copy of the mailbox into scratch; its number, or -1 if the writer kept it
 * busy through every attempt (the next tick tries again). */
static int64_t read_mailbox(int64_t *seq, const double *mailbox, double *scratch, int64_t n)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        int64_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        if (s1 & 1)
            continue;
        memcpy(scratch, mailbox, (size_t)n * sizeof(double));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(seq, __ATOMIC_RELAXED) == s1)
            return s1;
    }
    return -1;
}

/* The number of the last message a mailbox's sequence lock says is complete: its value,
 * or while a write is under way (odd) the one before. */
#define COMPLETE(seq) ((seq) & ~(int64_t)1)

/* InputSlot.apply (runtime/slots.py) for every input, at time now. */
#define APPLY_INPUTS(REAL)                                                                 \
    for (int64_t i = 0; i < n_inputs; i++) {                                              \
        const int64_t *row = inputs + i * IN_COLUMNS;                                      \
        int64_t *st = state + i * ST_COLUMNS;                                              \
        int64_t dim = row[IN_DIM];                                                         \
        double *scratch = (double *)(intptr_t)row[IN_SCRATCH];                             \
        REAL *target = (REAL *)(intptr_t)row[IN_TARGET];                                   \
        st[ST_FLAG] = 0;                                                                   \
        const int64_t seen = __atomic_load_n(&st[ST_SEQ], __ATOMIC_ACQUIRE);               \
        if (seen <= st[ST_CLEARED]) {                                                      \
            numbers += COMPLETE(seen);                                                     \
            continue; /* no value since the start or the last reset */                     \
        }                                                                                  \
        int64_t number = read_mailbox(&st[ST_SEQ], (const double *)(intptr_t)row[IN_MAILBOX], \
                                      scratch, dim + 2);                                   \
        /* Being written (the writer held the lock through every attempt): new once the   \
         * write completes, as seq_sum counts it. */                                       \
        numbers += number >= 0 ? number : COMPLETE(seen);                                  \
        if (number < 0 || number <= st[ST_CLEARED])                                        \
            continue;                                                                      \
        if (now - scratch[0] > ttl[i] || now > scratch[1]) {                               \
            if (number != st[ST_APPLIED]) { /* it never drove the network: said */          \
                st[ST_APPLIED] = number;                                                   \
                st[ST_FLAG] = 4;                                                           \
            }                                                                              \
            if (!st[ST_STALE]) {                                                           \
                const double *dflt = (const double *)(intptr_t)row[IN_DEFAULT];            \
                st[ST_STALE] = 1;                                                          \
                st[ST_FLAG] |= 2;                                                          \
                for (int64_t j = 0; j < dim; j++)                                          \
                    target[j] = (REAL)dflt[j];                                             \
            }                                                                              \
        } else if (number != st[ST_APPLIED]) {                                             \
            st[ST_APPLIED] = number;                                                       \
            st[ST_STALE] = 0;                                                              \
            st[ST_FLAG] = 1;                                                               \
            for (int64_t j = 0; j < dim; j++)                                              \
                target[j] = (REAL)scratch[2 + j];                                          \
        }                                                                                  \
    }

static int64_t apply_inputs_f64(const int64_t *inputs, int64_t n_inputs, int64_t *state,
                                const double *ttl, double now)
{
    int64_t numbers = 0;
    APPLY_INPUTS(double)
    return numbers;
}

static int64_t apply_inputs_f32(const int64_t *inputs, int64_t n_inputs, int64_t *state,
                                const double *ttl, double now)
{
    int64_t numbers = 0;
    APPLY_INPUTS(float)
    return numbers;
}

/* With tick()'s first thirteen arguments v (run_ticks' too): every input's mailbox
 * applied at time now, in the state's precision. Returns the sum of the mailbox numbers
 * it read (as seq_sum adds them up): what a later post changes. */
static int64_t apply_inputs(const int64_t *v, double now)
{
    const int64_t *inputs = (const int64_t *)(intptr_t)v[9];
    int64_t *state = (int64_t *)(intptr_t)v[11];
    const double *ttl = (const double *)(intptr_t)v[12];
    if (v[8])
        return apply_inputs_f32(inputs, v[10], state, ttl, now);
    return apply_inputs_f64(inputs, v[10], state, ttl, now);
}

/* The mailbox numbers of every input of v summed, each the last complete message's: it
 * changes once a post_input to them has written its value (a number only grows; it is
 * odd while a value is being written, and such a write counts once it completes: a tick
 * started early for it would find no new value, and the next one would start early for
 * the same message, once it was whole). With `taken`, each
 * input's number as the last tick left it instead: the message it applied, or the reset
 * (no tick runs meanwhile: a run of ticks begins), so a value posted between two runs is
 * new to the first tick of the next. */
static int64_t seq_sum(const int64_t *v, int taken)
{
    const int64_t *state = (const int64_t *)(intptr_t)v[11];
    int64_t sum = 0;
    for (int64_t i = 0; i < v[10]; i++) {
        const int64_t *st = state + i * ST_COLUMNS;
        sum += !taken ? COMPLETE(__atomic_load_n(&st[ST_SEQ], __ATOMIC_ACQUIRE))
               : st[ST_APPLIED] > st[ST_CLEARED] ? st[ST_APPLIED]
                                                 : st[ST_CLEARED];
    }
    return sum;
}

/* One tick of `program` (n_ops rows; the whole program, or one of its two stages) over
 * the table, constants and counts of v. */
static void run_stage(const int64_t *v, const int64_t *program, int64_t n_ops)
{
    const int64_t *table = (const int64_t *)(intptr_t)v[2];
    int64_t *counts = (int64_t *)(intptr_t)v[6];
    if (v[8])
        run_program_f32(program, n_ops, table, (const float *)(intptr_t)v[4], counts, 0, 1);
    else
        run_program_f64(program, n_ops, table, (const double *)(intptr_t)v[4], counts, 0, 1);
}

static int as_f64(PyObject *obj, double *out, const char *what)
{
    double value = PyFloat_AsDouble(obj);
    if (value == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) { /* an int past float64 */
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s: expected a float64; got an int beyond its "
                         "range", what);
        } else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: expected a float; got %.80s", what,
                         Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    *out = value;
    return 0;
}

PyDoc_STRVAR(now_doc, "now()\n--\n\nCLOCK_MONOTONIC in seconds (time.perf_counter's time line).");

static PyObject *py_now(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyFloat_FromDouble(mono_now());
}

PyDoc_STRVAR(sleep_until_doc,
"sleep_until(deadline, spin)\n--\n\n"
"Block, without the GIL, until now() >= deadline: sleep until spin seconds before it,\n"
"then spin. Returns now() at the end.");

static PyObject *py_sleep_until(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    double deadline, spin, end;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "sleep_until takes 2 arguments; got %zd", nargs);
        return NULL;
    }
    if (as_f64(args[0], &deadline, "deadline") < 0 || as_f64(args[1], &spin, "spin") < 0)
        return NULL;
    if (!(spin >= 0.0 && spin <= 1.0) || !deadline_ok(deadline)) {
        PyErr_SetString(PyExc_ValueError, "sleep_until: expected a deadline at most "
                        MAX_WAIT_TEXT " s ahead and 0 <= spin <= 1 s");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    sleep_until_mono(deadline, spin);
    end = mono_now();
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(end);
}

PyDoc_STRVAR(post_input_doc,
"post_input(state_row, mailbox, value, dim, received, expires)\n--\n\n"
"Write one input's value into its mailbox under the sequence lock (the I/O thread; one\n"
"writer per mailbox). state_row: address of the input's int64 state row; mailbox:\n"
"float64 (2 + dim,); value: float64 (dim,); received and expires: seconds on now()'s\n"
"time line (expires +inf for none).");

static PyObject *py_post_input(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t row, mailbox, value, dim;
    double received, expires;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "post_input takes 6 arguments; got %zd", nargs);
        return NULL;
    }
    if (as_i64(args[0], &row, "state_row") < 0 || as_i64(args[1], &mailbox, "mailbox") < 0 ||
        as_i64(args[2], &value, "value") < 0 || as_i64(args[3], &dim, "dim") < 0 ||
        as_f64(args[4], &received, "received") < 0 || as_f64(args[5], &expires, "expires") < 0)
        return NULL;
    if (dim < 0) {
        PyErr_Format(PyExc_ValueError, "post_input: dim %lld; expected >= 0", (long long)dim);
        return NULL;
    }
    int64_t *seq = (int64_t *)(intptr_t)row + ST_SEQ;
    double *box = (double *)(intptr_t)mailbox;
    int64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
    __atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    box[0] = received;
    box[1] = expires;
    memcpy(box + 2, (const double *)(intptr_t)value, (size_t)dim * sizeof(double));
    __atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);
    __atomic_add_fetch(&input_bell, 1, __ATOMIC_SEQ_CST);
#ifdef __linux__
    if (__atomic_load_n(&input_sleepers, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &input_bell, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
    return PyLong_FromLongLong((long long)(s + 2));
}

/* The integer arguments of tick() (the first 13) and run_ticks() (all 15), for errors. */
static const char *const TICK_ARGS[] = {"program", "n_ops",   "table",    "n_table", "scalars",
                                        "n_scalars", "counts", "n_counts", "float32", "inputs",
                                        "n_inputs", "state",   "ttl",      "loop",    "times"};

PyDoc_STRVAR(tick_doc,
"tick(program, n_ops, table, n_table, scalars, n_scalars, counts, n_counts, float32,\n"
"     inputs, n_inputs, state, ttl, deadline, spin)\n"
"--\n\n"
"One live tick without the GIL: wait until the deadline (now() seconds; -inf: no\n"
"wait), apply every input's mailbox (InputSlot.apply's rules, at the tick's start),\n"
"run tick 0 of the program. The first nine arguments are run_program's, checked once\n"
"by check_program with stop 1; inputs: int64\n"
"(n_inputs, 5), state: int64 (n_inputs, 5), ttl: float64 (n_inputs,). Returns the\n"
"tick's start and end (inputs applied and program run), now() seconds.");

static PyObject *py_tick(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[13];
    double deadline, spin, start, end;
    if (int_args(args, nargs, 15, 13, "tick", TICK_ARGS, v) < 0)
        return NULL;
    if (as_f64(args[13], &deadline, "deadline") < 0 || as_f64(args[14], &spin, "spin") < 0)
        return NULL;
    if (!(spin >= 0.0 && spin <= 1.0) || !deadline_ok(deadline) || v[10] < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "tick: expected a deadline at most " MAX_WAIT_TEXT " s ahead (or -inf), "
                        "0 <= spin <= 1 s and n_inputs >= 0");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (deadline > -INFINITY)
        sleep_until_mono(deadline, spin);
    start = mono_now();
    apply_inputs(v, start);
    run_stage(v, (const int64_t *)(intptr_t)v[0], v[1]);
    end = mono_now();
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(dd)", start, end);
}
