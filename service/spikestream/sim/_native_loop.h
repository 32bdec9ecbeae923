/* The run of live ticks (run_loop, run_ticks) and the ring its rows go to (ring_take,
 * ring_look, ring_done).
 * This file is included by _native.c only, in the place of the section it holds: it
 * uses what the lines above its #include define. */

static int run_loop(const int64_t *v, int64_t *loop, const double *times)
{
    const int64_t capacity = loop[L_CAPACITY];
    const int two = loop[L_PROGRAM2] != 0;
    const int64_t main_copies = two ? loop[L_MAIN_COPIES] : loop[L_N_COPIES];
    struct stages p = {.v = v,
                       .loop = loop,
                       .head0 = loop[L_HEAD],
                       .main_copies = main_copies,
                       .times = times,
                       .k0 = loop[L_NEXT],
                       .latched_ns = mono_ns(),
                       .seq_applied = seq_sum(v, 1)};
    loop[L_TICKS] = 0; /* before the helper starts: it may run ticks too */
    pthread_t helper;
    const int threaded = two && !loop[L_INLINE] && start_stage2(&p, &helper) == 0;
    loop[L_THREADED] = threaded;
    cpu_set_t old_mask;
    const int pinned = threaded && loop[L_PIN] && pin_stages(helper, &old_mask);
    loop[L_PINNED] = pinned;
    int reason;
    /* i: this call's next tick. Each is claimed (p.started) by the thread that runs its
     * first stage, or by the tick thread to end the call there; a claim lost means the
     * helper ran the tick (await_post_or_take), and the tick thread goes on to the next. */
    for (int64_t i = 0;; i++) {
        /* The previous tick's second stage has latched what this tick's first overwrites
         * (before the deadline is judged: a tick the helper holds past it is late). A late
         * helper's tick is taken over L_TAKE_NS after the hand-over: a helper woken on
         * time begins within tens of microseconds. */
        if (threaded && i > 0)
            __atomic_add_fetch(&loop[L_TAKEOVERS], await_or_take(&p, i), __ATOMIC_RELAXED);
        if (__atomic_load_n(&loop[L_STOP], __ATOMIC_ACQUIRE)) {
            if (!claim(&p.started, i))
                continue;
            reason = RUN_CONTROL;
            break;
        }
        /* Rows begun: with two stages the helper publishes them (L_HEAD) later. */
        const int64_t head = p.head0 + i;
        if (head - __atomic_load_n(&loop[L_TAIL], __ATOMIC_ACQUIRE) >= capacity) {
            if (!claim(&p.started, i))
                continue;
            reason = RUN_FULL;
            break;
        }
        const int64_t k = p.k0 + i;
        const double deadline = deadline_of(&p, i);
        const int64_t late = mono_now() > deadline;
        int early = 0;
        if (late) {
            /* Pacer.due()'s catch-up: run the late tick at once, unless the burst would
             * reach max_catchup (the pacer realigns) or the policy is another one. */
            if (!may_catch_up(loop)) {
                if (!claim(&p.started, i))
                    continue;
                reason = RUN_OVERRUN; /* Pacer.due() applies the policy to this tick */
                break;
            }
        } else if ((early = wait_for_tick(&p, deadline, spin_now(loop, times))) < 0) {
            if (!claim(&p.started, i)) /* a stop during the wait, as at the loop's top */
                continue;
            reason = RUN_CONTROL;
            break;
        }
        const int64_t every = loop[L_MAIN_LAG_EVERY] > 1 ? loop[L_MAIN_LAG_EVERY] : 1;
        if (loop[L_MAIN_LAG_NS] > 0 && k % every == 0)
            sleep_until_mono(mono_now() + (double)loop[L_MAIN_LAG_NS] * 1e-9, 0.0);
        if (!claim(&p.started, i))
            continue;
        /* Claimed: what the helper would have changed, had it taken the tick, changes
         * here. */
        if (early)
            __atomic_add_fetch(&loop[L_EARLY_TICKS], 1, __ATOMIC_RELAXED);
        if (late) {
            set_burst(loop, burst_now(loop) + 1);
        } else {
            set_burst(loop, 0);
            loop[L_BUSY_TICKS] += loop[L_CONTENDED];
        }
        const double end = stage1_tick(&p, i, k, deadline, late);
        if (threaded)
            post_stage1(&p, i);
        else if (two)
            stage2_tick(&p, i, STAGE2_INLINE);
        else
            finish_tick(loop, head, main_copies, end);
        /* After the row is handed on (with one stage, out and the reader woken): the
         * reading never delays a frame. */
        adapt_spin(loop, times);
    }
    if (threaded) {
        /* Python may read or change any array once this returns: every tick handed over
         * finishes first (the helper begins none after the claim that ended the loop). */
        await_count(&p.done, __atomic_load_n(&p.posted, __ATOMIC_SEQ_CST), &p.mbell,
                    &p.main_waits, NULL);
        signal_count(&p.quit, 1, &p.bell, &p.helper_waits);
        pthread_join(helper, NULL);
    }
    if (pinned)
        sched_setaffinity(0, sizeof old_mask, &old_mask);
    return reason;
}

/* A ValueError for run_ticks' times column `what` (PyErr_Format has no %g: the value is
 * shown as Python's repr of the float). Returns 0. */
static int refuse_seconds(const char *what, double value, const char *expected)
{
    PyObject *x = PyFloat_FromDouble(value);
    if (x != NULL) {
        PyErr_Format(PyExc_ValueError, "run_ticks: %s %R s; expected %s", what, x, expected);
        Py_DECREF(x);
    }
    return 0;
}

/* Whether run_ticks can run on n_inputs, loop and times; else a ValueError naming the
 * first column out of its range, its value and the range. */
static int run_args_ok(int64_t n_inputs, const int64_t *loop, const double *times)
{
#define REFUSE(...)                                                                        \
    do {                                                                                   \
        PyErr_Format(PyExc_ValueError, "run_ticks: " __VA_ARGS__);                         \
        return 0;                                                                          \
    } while (0)
    if (n_inputs < 0)
        REFUSE("n_inputs %lld; expected >= 0", (long long)n_inputs);
    if (loop == NULL || times == NULL)
        REFUSE("a null %s array; expected an address", loop == NULL ? "loop" : "times");
    if (loop[L_CAPACITY] < 1)
        REFUSE("capacity %lld; expected >= 1", (long long)loop[L_CAPACITY]);
    if (loop[L_ROW_BYTES] < 8 * R_META || loop[L_ROW_BYTES] % 8 != 0)
        REFUSE("row bytes %lld; expected a multiple of 8, at least the row header's %d",
               (long long)loop[L_ROW_BYTES], 8 * R_META);
    if (loop[L_N_COPIES] < 0)
        REFUSE("%lld copies; expected >= 0", (long long)loop[L_N_COPIES]);
    if (loop[L_N_STREAMS] < 0)
        REFUSE("%lld streams; expected >= 0", (long long)loop[L_N_STREAMS]);
    if (!(times[T_PERIOD] > 0.0))
        return refuse_seconds("period", times[T_PERIOD], "> 0");
    if (!(times[T_SPIN] >= 0.0 && times[T_SPIN] <= 1.0))
        return refuse_seconds("spin", times[T_SPIN], "0 to 1 s");
    if (!(times[T_BUSY_SPIN] >= 0.0 && times[T_BUSY_SPIN] <= 1.0))
        return refuse_seconds("busy spin", times[T_BUSY_SPIN], "0 to 1 s");
    if (!adaptation_ok(loop))
        REFUSE("a schedstat descriptor %lld (procstat %lld) with adapt ticks %lld, calm "
               "windows %lld and hot windows %lld; expected descriptors that fit an int and "
               "each count >= 1 (or no descriptor: < 0)",
               (long long)loop[L_SCHEDSTAT], (long long)loop[L_PROCSTAT],
               (long long)loop[L_ADAPT_TICKS], (long long)loop[L_CALM_WINDOWS],
               (long long)loop[L_HOT_WINDOWS]);
    if (!deadline_ok(times[T_T0] + (double)(loop[L_NEXT] - loop[L_K0]) * times[T_PERIOD]))
        REFUSE("tick %lld's deadline; expected at most " MAX_WAIT_TEXT " s ahead",
               (long long)loop[L_NEXT]);
    if (loop[L_PROGRAM2] != 0) {
        if (loop[L_N_OPS2] < 1)
            REFUSE("a second stage of %lld ops; expected >= 1", (long long)loop[L_N_OPS2]);
        if (loop[L_N_LATCHES] < 0 || (loop[L_N_LATCHES] > 0 && loop[L_LATCHES] == 0))
            REFUSE("%lld latches%s; expected >= 0, with an array if > 0",
                   (long long)loop[L_N_LATCHES], loop[L_LATCHES] == 0 ? " and no array" : "");
        if (loop[L_MAIN_COPIES] < 0 || loop[L_MAIN_COPIES] > loop[L_N_COPIES])
            REFUSE("%lld first-stage copies of %lld; expected 0 to the copies",
                   (long long)loop[L_MAIN_COPIES], (long long)loop[L_N_COPIES]);
    }
    if (loop[L_PACE] != 0 && !pace_ok((const int64_t *)(intptr_t)loop[L_PACE]))
        REFUSE("a malformed pace record descriptor (see _native_record.h)");
    if (loop[L_WORK] != 0 && !window_ok((const int64_t *)(intptr_t)loop[L_WORK]))
        REFUSE("a malformed work record descriptor (see _native_record.h)");
#undef REFUSE
    return 1;
}

PyDoc_STRVAR(run_ticks_doc,
"run_ticks(program, n_ops, table, n_table, scalars, n_scalars, counts, n_counts, float32,\n"
"          inputs, n_inputs, state, ttl, loop, times)\n"
"--\n\n"
"Run live ticks without the GIL until asked to stop (loop[L_STOP]), until a tick is due\n"
"before the previous one ended (an overrun: the caller's pacer decides), or until the\n"
"ring is full. The first thirteen arguments are tick()'s; loop: int64 (L_COLUMNS,) and\n"
"times: float64 (T_COLUMNS,) addresses (see _native_pacing.h). Returns 0 (stop), 1\n"
"(overrun) or 2 (ring full); loop[L_TICKS] says how many ticks ran.");

static PyObject *py_run_ticks(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[15];
    int reason;
    if (int_args(args, nargs, 15, 15, "run_ticks", TICK_ARGS, v) < 0)
        return NULL;
    int64_t *loop = (int64_t *)(intptr_t)v[13];
    const double *times = (const double *)(intptr_t)v[14];
    if (!run_args_ok(v[10], loop, times))
        return NULL;
    const int64_t *copies = (const int64_t *)(intptr_t)loop[L_COPIES];
    for (int64_t c = 0; c < loop[L_N_COPIES]; c++) {
        const int64_t *e = copies + 3 * c;
        if (e[1] < 0 || e[2] < 8 * R_META || e[2] + e[1] > loop[L_ROW_BYTES]) {
            PyErr_Format(PyExc_ValueError,
                         "run_ticks: copy %lld of %lld bytes at offset %lld; expected it "
                         "within the row after its header (%lld bytes)",
                         (long long)c, (long long)e[1], (long long)e[2],
                         (long long)loop[L_ROW_BYTES]);
            return NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    reason = run_loop(v, loop, times);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(reason);
}

/* The reader's arming (ring_take, ring_look): reset the wake-up descriptor's counter (if
 * it has one), arm the wake-up, then read where the rows end, in that order on any CPU.
 * Returns the head. */
static int64_t ring_arm(int64_t *loop)
{
    if (loop[L_EVENTFD] >= 0) {
        /* Non-blocking: a counter at 0 (EAGAIN) has nothing to reset. Before the arming,
         * so a wake-up written after it stays readable. */
        uint64_t count;
        ssize_t got = read((int)loop[L_EVENTFD], &count, sizeof count);
        (void)got;
    }
    __atomic_store_n(&loop[L_ARMED], 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&loop[L_HEAD], __ATOMIC_ACQUIRE);
}

/* Whether loop holds a ring as run_ticks lays it out (a ring, its rows and their size);
 * else a ValueError naming fn. */
static int ring_ok(const int64_t *loop, const char *fn)
{
    if (loop == NULL || loop[L_RING] == 0) {
        PyErr_Format(PyExc_ValueError, "%s: a malformed loop array: no ring; expected "
                     "run_ticks' (a ring, its rows and their size)", fn);
        return 0;
    }
    if (loop[L_CAPACITY] < 1 || loop[L_ROW_BYTES] < 8 * R_META || loop[L_ROW_BYTES] % 8 != 0) {
        PyErr_Format(PyExc_ValueError, "%s: a malformed loop array: capacity %lld, row bytes "
                     "%lld; expected run_ticks' (capacity >= 1, row bytes a multiple of 8 "
                     "holding the row header's %d)", fn, (long long)loop[L_CAPACITY],
                     (long long)loop[L_ROW_BYTES], 8 * R_META);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(ring_take_doc,
"ring_take(loop)\n--\n\n"
"The reader's side of run_ticks' ring: reset the wake-up descriptor's counter (if it\n"
"has one), arm the wake-up, then read where the rows end, in that order on any CPU (a\n"
"row written after this read finds the reader armed and wakes it again). loop: address\n"
"of the int64 loop array. Returns (tail, head): rows tail..head-1 are ready.");

static PyObject *py_ring_take(PyObject *self, PyObject *arg)
{
    (void)self;
    int64_t address;
    if (as_i64(arg, &address, "loop") < 0)
        return NULL;
    int64_t *loop = (int64_t *)(intptr_t)address;
    if (!ring_ok(loop, "ring_take"))
        return NULL;
    const int64_t head = ring_arm(loop);
    return Py_BuildValue("(LL)", (long long)loop[L_TAIL], (long long)head);
}

PyDoc_STRVAR(ring_look_doc,
"ring_look(loop, state_offset, inputs)\n--\n\n"
"ring_take, then what the reader's bookkeeping needs of the rows ready, read in one pass\n"
"(Engine._collect: the pacer learns of a run at once, and only rows in which an input\n"
"changed go through Python). loop: address of the int64 loop array; state_offset: the\n"
"input state's byte offset in a row (int64 (inputs, 5), as the tick leaves it). Returns\n"
"(tail, head, caught_up, trailing, changed, index, deadline, start): caught_up counts the\n"
"rows flagged as catch-up ticks, trailing those at the end of the rows in a row; changed\n"
"is the first row (0-based from tail) whose state flags a change of any input, or\n"
"head - tail when none does; index, deadline and start are the last row's (-1, nan and\n"
"nan when no row is ready).");

static PyObject *py_ring_look(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[3];
    static const char *const names[] = {"loop", "state_offset", "inputs"};
    if (int_args(args, nargs, 3, 3, "ring_look", names, v) < 0)
        return NULL;
    int64_t *loop = (int64_t *)(intptr_t)v[0];
    const int64_t at = v[1], inputs = v[2];
    if (!ring_ok(loop, "ring_look"))
        return NULL;
    const int64_t row_bytes = loop[L_ROW_BYTES];
    if (inputs < 0 || at < 8 * R_META || at % 8 != 0 || at > row_bytes ||
        inputs > (row_bytes - at) / (8 * ST_COLUMNS)) {
        PyErr_Format(PyExc_ValueError, "ring_look: the input state of %lld inputs at byte "
                     "%lld; expected it within a row of %lld bytes, after its header",
                     (long long)inputs, (long long)at, (long long)row_bytes);
        return NULL;
    }
    const int64_t head = ring_arm(loop), tail = loop[L_TAIL];
    if (tail < 0 || head < tail || head - tail > loop[L_CAPACITY]) {
        PyErr_Format(PyExc_ValueError, "ring_look: rows %lld .. %lld ready; expected at most "
                     "the ring's %lld", (long long)tail, (long long)head,
                     (long long)loop[L_CAPACITY]);
        return NULL;
    }
    int64_t caught = 0, trailing = 0, changed = head - tail, index = -1;
    double deadline = NAN, start = NAN;
    for (int64_t r = tail; r < head; r++) {
        const char *row = ring_row(loop, r);
        const int64_t late = ((const int64_t *)row)[R_FLAGS] != 0;
        caught += late;
        trailing = late ? trailing + 1 : 0;
        if (changed == head - tail) {
            const int64_t *st = (const int64_t *)(row + at);
            for (int64_t i = 0; i < inputs; i++) {
                if (st[i * ST_COLUMNS + ST_FLAG] != 0) {
                    changed = r - tail;
                    break;
                }
            }
        }
    }
    if (head > tail) {
        const char *row = ring_row(loop, head - 1);
        index = ((const int64_t *)row)[R_INDEX];
        deadline = ((const double *)row)[R_DEADLINE];
        start = ((const double *)row)[R_START];
    }
    return Py_BuildValue("(LLLLLLdd)", (long long)tail, (long long)head, (long long)caught,
                         (long long)trailing, (long long)changed, (long long)index, deadline,
                         start);
}

PyDoc_STRVAR(ring_done_doc,
"ring_done(loop, count)\n--\n\n"
"Give count rows back to run_ticks, after they were read (a release store, so the loop\n"
"never overwrites a row still being read).");

static PyObject *py_ring_done(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t address, count;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "ring_done takes 2 arguments; got %zd", nargs);
        return NULL;
    }
    if (as_i64(args[0], &address, "loop") < 0 || as_i64(args[1], &count, "count") < 0)
        return NULL;
    int64_t *loop = (int64_t *)(intptr_t)address;
    if (!ring_ok(loop, "ring_done"))
        return NULL;
    int64_t tail = loop[L_TAIL];
    if (count < 0 || count > __atomic_load_n(&loop[L_HEAD], __ATOMIC_ACQUIRE) - tail) {
        PyErr_Format(PyExc_ValueError, "ring_done: %lld rows; expected 0 to the rows ready",
                     (long long)count);
        return NULL;
    }
    __atomic_store_n(&loop[L_TAIL], tail + count, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}
