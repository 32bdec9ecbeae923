/* Probe streams in compiled code: runtime/streams.py's frame pool and bounded queue, kept
 * in arrays the Python class allocates once and reads itself, and written here by
 * stream_record, stream_flush, stream_take, stream_release and stream_count (one call each,
 * with the GIL held, so each is atomic against the other threads' calls) and by
 * streams_record, which turns a run's ring rows into every probe's frames in one call (the
 * I/O thread's collect, or the tick thread's between runs).
 *
 * The arithmetic and the order of every step are those of streams.py's Python steps
 * (_py_*), so the arrays after any sequence of calls are byte for byte the ones they
 * leave: tests/runtime/test_streams.py draws the sequences with hypothesis and compares.
 * This file is included by _native.c only, after the ring's row layout (R_*). */

/* A stream's control block (int64): its descriptor, its state, then the queue's ring of
 * buffer numbers (N_BUF) and the stack of free ones (N_BUF). */
enum {
    K_TAG,        /* TAG_STREAM */
    K_LENGTH,     /* int64s in the block: K_HEAD + 2 * N_BUF */
    K_POOL,       /* address of the pool: N_BUF buffers of ROWS rows of ROW_BYTES bytes */
    K_POOL_BYTES, /* its length, N_BUF * ROWS * ROW_BYTES */
    K_HEADS,      /* address of int64 (N_BUF, H_COLUMNS) */
    K_TIMES,      /* address of float64 (N_BUF, F_COLUMNS) */
    K_N_BUF,      /* buffers: CAPACITY queued, one being filled, one being encoded */
    K_ROWS,       /* rows per buffer (a coalesced frame may pass TPF) */
    K_ROW_BYTES,  /* bytes per row: one tick's value */
    K_FLOAT,      /* 1: float32 values, 0: bool spikes */
    K_CAPACITY,   /* frames the queue holds */
    K_TPF,        /* ticks per frame */
    K_COALESCE,   /* 1: coalesce, 0: drop-oldest */
    K_CURRENT,    /* the buffer being filled */
    K_Q_START,    /* the queue's oldest entry in the ring */
    K_Q_LEN,      /* frames queued */
    K_N_FREE,     /* entries on the free stack */
    K_SEQ,        /* the next frame's seq */
    K_DROPPED,    /* frames dropped (queue full, or counted by the sender) */
    K_COALESCED,  /* frames merged into the newest queued one */
    K_FRAMES,     /* frames queued since the start */
    K_OUT,        /* buffers taken and not yet released: 0 or 1, so the pool never runs dry */
    K_LEGACY,     /* frames of an older size queued before these (held by Python, oldest
                     first): they count against CAPACITY and are dropped first */
    K_LEGACY_DROPPED, /* of those, dropped here and not yet discarded by the taker */
    K_HEAD
};
/* Per buffer (int64); H_OUT is 1 while the sender holds it (taken, not yet released). */
enum { H_SEQ, H_TICK, H_TICKS, H_DROPPED, H_OUT, H_COLUMNS };
/* Per buffer (float64): */
enum { F_T, F_WALL, F_LATE, F_COLUMNS };
#define TAG_STREAM 0x53504b5354520000LL /* "SPKSTR" */
/* A source row's kind in streams_record and stream_record: the same bytes as the pool's
 * row (bool to bool, float32 to float32), or float64 values cast to float32. */
enum { SRC_SAME, SRC_F64 };

static int stream_ok(const int64_t *k)
{
    if (k == NULL || k[K_TAG] != TAG_STREAM)
        return 0;
    const int64_t n = k[K_N_BUF], rows = k[K_ROWS], rb = k[K_ROW_BYTES];
    if (!(n >= 3 && n < MAX_SIZE && rows >= 1 && rows < MAX_SIZE && rb >= 0 &&
          rb < ((int64_t)1 << 40) / rows / n))
        return 0;
    const int64_t cap = k[K_CAPACITY], tpf = k[K_TPF], cur = k[K_CURRENT];
    const int64_t q_len = k[K_Q_LEN], n_free = k[K_N_FREE], out = k[K_OUT];
    const int64_t legacy = k[K_LEGACY];
    if (!(k[K_LENGTH] == K_HEAD + 2 * n && k[K_POOL] != 0 && k[K_HEADS] != 0 &&
          k[K_TIMES] != 0 && k[K_POOL_BYTES] == n * rows * rb && cap == n - 2 && tpf >= 1 &&
          tpf <= rows && (k[K_FLOAT] == 0 || (k[K_FLOAT] == 1 && rb % 4 == 0)) &&
          (k[K_COALESCE] == 0 || k[K_COALESCE] == 1) && cur >= 0 && cur < n &&
          k[K_Q_START] >= 0 && k[K_Q_START] < n && q_len >= 0 && legacy >= 0 &&
          q_len + legacy <= cap && k[K_LEGACY_DROPPED] >= 0 && n_free >= 0 &&
          (out == 0 || out == 1) && 1 + q_len + n_free + out == n))
        return 0;
    /* Every buffer number the next step may follow (the queue's head and tail, the free
     * stack's top, the one filling) and the rows those hold: a block written by anything
     * but these steps is refused, never written through. Checked before each step (in
     * streams_record, before each row's), so O(1): the other entries are the steps' own. */
    const int64_t *q = k + K_HEAD, *free_stack = k + K_HEAD + n;
    const int64_t *heads = (const int64_t *)(intptr_t)k[K_HEADS];
    if (q_len > 0) {
        const int64_t head = q[k[K_Q_START]], tail = q[(k[K_Q_START] + q_len - 1) % n];
        if (head < 0 || head >= n || tail < 0 || tail >= n)
            return 0;
        const int64_t tail_ticks = heads[tail * H_COLUMNS + H_TICKS];
        if (tail_ticks < 0 || tail_ticks > rows)
            return 0;
    }
    if (n_free > 0 && (free_stack[n_free - 1] < 0 || free_stack[n_free - 1] >= n))
        return 0;
    const int64_t ticks = heads[cur * H_COLUMNS + H_TICKS];
    return ticks >= 0 && ticks < tpf;
}

static inline int64_t *s_heads(const int64_t *k, int64_t b)
{
    return (int64_t *)(intptr_t)k[K_HEADS] + b * H_COLUMNS;
}
static inline double *s_times(const int64_t *k, int64_t b)
{
    return (double *)(intptr_t)k[K_TIMES] + b * F_COLUMNS;
}
static inline uint8_t *s_row(const int64_t *k, int64_t b, int64_t row)
{
    return (uint8_t *)(intptr_t)k[K_POOL] + (b * k[K_ROWS] + row) * k[K_ROW_BYTES];
}
static inline int64_t *s_queue(int64_t *k) { return k + K_HEAD; }
static inline int64_t *s_free(int64_t *k) { return k + K_HEAD + k[K_N_BUF]; }

/* Buffer b back on the free stack, empty. */
static void s_recycle(int64_t *k, int64_t b)
{
    s_heads(k, b)[H_TICKS] = 0;
    s_free(k)[k[K_N_FREE]++] = b;
}

/* Queue the buffer being filled (streams.py's _py_emit): when the queue is full, merge it into
 * the newest queued frame (coalesce, when that has room and the ticks follow on) or drop
 * the oldest, counted; then fill a free buffer. */
static void s_emit(int64_t *k)
{
    const int64_t n = k[K_N_BUF], cur = k[K_CURRENT];
    int64_t *q = s_queue(k), *hc = s_heads(k, cur);
    if (k[K_Q_LEN] + k[K_LEGACY] >= k[K_CAPACITY]) {
        if (k[K_Q_LEN] > 0) { /* a frame of this size to merge into */
            const int64_t tail = q[(k[K_Q_START] + k[K_Q_LEN] - 1) % n];
            int64_t *ht = s_heads(k, tail);
            const int64_t room = k[K_ROWS] - ht[H_TICKS];
            const int contiguous = ht[H_TICK] + ht[H_TICKS] == hc[H_TICK];
            if (k[K_COALESCE] && room >= hc[H_TICKS] && contiguous) {
                memcpy(s_row(k, tail, ht[H_TICKS]), s_row(k, cur, 0),
                       (size_t)(hc[H_TICKS] * k[K_ROW_BYTES]));
                ht[H_TICKS] += hc[H_TICKS];
                double *ft = s_times(k, tail), *fc = s_times(k, cur);
                ft[F_T] = fc[F_T];
                ft[F_WALL] = fc[F_WALL];
                if (fc[F_LATE] > ft[F_LATE])
                    ft[F_LATE] = fc[F_LATE];
                k[K_COALESCED] += 1;
                hc[H_TICKS] = 0;
                return;
            }
        }
        /* drop-oldest: the oldest frame's seq is skipped, so clients see the gap. The
         * oldest is one of an older size while any is queued; the taker discards it. */
        if (k[K_LEGACY] > 0) {
            k[K_LEGACY] -= 1;
            k[K_LEGACY_DROPPED] += 1;
        } else {
            const int64_t oldest = q[k[K_Q_START]];
            k[K_Q_START] = (k[K_Q_START] + 1) % n;
            k[K_Q_LEN] -= 1;
            s_recycle(k, oldest);
        }
        k[K_DROPPED] += 1;
    }
    hc[H_SEQ] = k[K_SEQ];
    k[K_SEQ] += 1;
    k[K_FRAMES] += 1;
    q[(k[K_Q_START] + k[K_Q_LEN]) % n] = cur;
    k[K_Q_LEN] += 1;
    const int64_t next = s_free(k)[--k[K_N_FREE]];
    s_heads(k, next)[H_TICKS] = 0;
    k[K_CURRENT] = next;
}

/* One tick's value into the frame being filled (ProbeStream.record); 1 when it completed
 * the frame. src: the value's bytes, of the kind given. */
static int s_record(int64_t *k, const void *src, int kind, int64_t tick, double t, double late,
                    double wall)
{
    const int64_t cur = k[K_CURRENT];
    int64_t *h = s_heads(k, cur);
    double *f = s_times(k, cur);
    const int64_t row = h[H_TICKS];
    if (row == 0) {
        h[H_TICK] = tick;
        f[F_LATE] = 0.0;
    }
    uint8_t *dst = s_row(k, cur, row);
    if (kind == SRC_F64) {
        const double *x = (const double *)src;
        float *y = (float *)dst;
        for (int64_t i = 0, m = k[K_ROW_BYTES] / 4; i < m; i++)
            y[i] = (float)x[i];
    } else {
        memcpy(dst, src, (size_t)k[K_ROW_BYTES]);
    }
    h[H_TICKS] = row + 1;
    f[F_T] = t; /* the end of the frame so far: a frame flushed short says where it ends */
    if (late > f[F_LATE])
        f[F_LATE] = late;
    if (row + 1 < k[K_TPF])
        return 0;
    f[F_WALL] = wall;
    s_emit(k);
    return 1;
}

/* Queue the partial frame, if any (ProbeStream.flush); 1 if one was queued. */
static int s_flush(int64_t *k, double wall)
{
    const int64_t cur = k[K_CURRENT];
    if (s_heads(k, cur)[H_TICKS] == 0)
        return 0;
    s_times(k, cur)[F_WALL] = wall;
    s_emit(k);
    return 1;
}

/* The oldest queued frame's buffer, its header's dropped set to the count now; -1: none
 * queued; -2: one is out already (the pool holds one buffer for the sender: a second
 * taken before the first is released could leave the filling side without a buffer). */
static int64_t s_take(int64_t *k)
{
    if (k[K_OUT] != 0)
        return -2;
    if (k[K_Q_LEN] == 0)
        return -1;
    const int64_t b = s_queue(k)[k[K_Q_START]];
    k[K_Q_START] = (k[K_Q_START] + 1) % k[K_N_BUF];
    k[K_Q_LEN] -= 1;
    int64_t *h = s_heads(k, b);
    h[H_DROPPED] = k[K_DROPPED];
    h[H_OUT] = 1;
    k[K_OUT] = 1;
    return b;
}

/* Undo s_take(k) that returned b, right after it (its header could not be handed over:
 * nothing ran in between): the frame is the oldest queued again. */
static void s_untake(int64_t *k, int64_t b)
{
    const int64_t n = k[K_N_BUF];
    s_heads(k, b)[H_OUT] = 0;
    k[K_OUT] = 0;
    k[K_Q_START] = (k[K_Q_START] + n - 1) % n;
    s_queue(k)[k[K_Q_START]] = b;
    k[K_Q_LEN] += 1;
}

/* The taker's step for the frames of an older size (K_LEGACY): how many it must discard
 * from the front of its own queue of them (dropped here since), then whether it may take
 * the next one (counted out of K_LEGACY). Returns the count to discard; *serve: 1 if it
 * takes one. */
static int64_t s_take_legacy(int64_t *k, int *serve)
{
    const int64_t discard = k[K_LEGACY_DROPPED];
    k[K_LEGACY_DROPPED] = 0;
    *serve = k[K_LEGACY] > 0;
    if (*serve)
        k[K_LEGACY] -= 1;
    return discard;
}

/* Buffer b, taken by s_take, back to the pool; 0 if b is not out (refused, untouched). */
static int s_release(int64_t *k, int64_t b)
{
    if (b < 0 || b >= k[K_N_BUF] || s_heads(k, b)[H_OUT] != 1 || k[K_N_FREE] >= k[K_N_BUF])
        return 0;
    s_heads(k, b)[H_OUT] = 0;
    k[K_OUT] = 0;
    s_recycle(k, b);
    return 1;
}

/* A run's ring rows into every stream's frames (the loop of Engine._collect): row r of
 * count, from tail, is the tick of index first + r, at t = (first + r + 1) * dt, late by
 * its start past its deadline (pacer._lateness), ended at its wall time. table: int64
 * (n_streams, 3), each stream's control block, its value's offset in a row and the value's
 * kind (SRC_*). Returns 1 if a frame completed, -1 (stopping there) at a malformed stream
 * block; the table's offsets and kinds are checked by the caller (py_streams_record). */
static int s_record_rows(const int64_t *table, int64_t n_streams, const uint8_t *ring,
                         int64_t ring_rows, int64_t row_bytes, int64_t tail, int64_t count,
                         int64_t first, double dt)
{
    int completed = 0;
    for (int64_t r = 0; r < count; r++) {
        const uint8_t *row = ring + ((tail + r) % ring_rows) * row_bytes;
        double meta[R_END];
        memcpy(meta, row, sizeof meta);
        const double start = meta[R_START], deadline = meta[R_DEADLINE];
        const double late = start > deadline ? start - deadline : 0.0;
        const int64_t index = first + r;
        const double t = (double)(index + 1) * dt;
        for (int64_t s = 0; s < n_streams; s++) {
            const int64_t *e = table + 3 * s;
            int64_t *k = (int64_t *)(intptr_t)e[0];
            if (!stream_ok(k))
                return -1;
            completed |= s_record(k, row + e[1], (int)e[2], index, t, late, meta[R_WALL_END]);
        }
    }
    return completed;
}

/* ------------------------------------------------------------------ the entry points */

/* The stream block at address, checked (stream_ok), or NULL with a ValueError. */
static int64_t *stream_block(int64_t address, const char *fn)
{
    int64_t *k = (int64_t *)(intptr_t)address;
    if (!stream_ok(k)) {
        PyErr_Format(PyExc_ValueError, "%s: a malformed stream block; expected one laid out "
                     "as _native_streams.h's", fn);
        return NULL;
    }
    return k;
}

static int64_t *stream_arg(PyObject *arg, const char *fn)
{
    int64_t address;
    return as_i64(arg, &address, "stream") < 0 ? NULL : stream_block(address, fn);
}

PyDoc_STRVAR(stream_record_doc,
"stream_record(stream, value, tick, t, late, wall)\n--\n\n"
"One tick's value into the stream's frame being filled (ProbeStream.record); True when it\n"
"completed a frame. stream: address of the control block; value: a C-contiguous array\n"
"of the frame row's bytes (bool or float32 as the pool) or of float64 values cast here.");

static PyObject *py_stream_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "stream_record takes 6 arguments; got %zd", nargs);
        return NULL;
    }
    int64_t *k = stream_arg(args[0], "stream_record");
    int64_t tick;
    double t, late, wall;
    if (k == NULL || as_i64(args[2], &tick, "tick") < 0 || as_f64(args[3], &t, "t") < 0 ||
        as_f64(args[4], &late, "late") < 0 || as_f64(args[5], &wall, "wall") < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    int kind = -1;
    const char *fmt = view.format == NULL ? "B" : view.format;
    if (view.len == k[K_ROW_BYTES] && strcmp(fmt, k[K_FLOAT] ? "f" : "?") == 0)
        kind = SRC_SAME;
    else if (k[K_FLOAT] && view.itemsize == 8 && strcmp(fmt, "d") == 0 &&
             view.len == 2 * k[K_ROW_BYTES])
        kind = SRC_F64;
    if (kind < 0) {
        PyErr_Format(PyExc_ValueError, "stream_record: a value of %zd bytes of format %.8s; "
                     "expected the row's %lld bytes of its dtype (bool or float32), or "
                     "float64 values for a float32 row", view.len, fmt,
                     (long long)k[K_ROW_BYTES]);
        PyBuffer_Release(&view);
        return NULL;
    }
    int done = s_record(k, view.buf, kind, tick, t, late, wall);
    PyBuffer_Release(&view);
    return PyBool_FromLong(done);
}

PyDoc_STRVAR(stream_flush_doc,
"stream_flush(stream, wall)\n--\n\n"
"Queue the partial frame, if any (ProbeStream.flush); True if one was queued.");

static PyObject *py_stream_flush(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    double wall;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "stream_flush takes 2 arguments; got %zd", nargs);
        return NULL;
    }
    int64_t *k = stream_arg(args[0], "stream_flush");
    if (k == NULL || as_f64(args[1], &wall, "wall") < 0)
        return NULL;
    return PyBool_FromLong(s_flush(k, wall));
}

PyDoc_STRVAR(stream_take_doc,
"stream_take(stream)\n--\n\n"
"The oldest queued frame, out of the queue until stream_release: (buffer, (seq, tick,\n"
"ticks, t, wall, late_max, dropped)), its dropped the stream's count now; or None.\n"
"ValueError while the frame taken before is not released.");

static PyObject *py_stream_take(PyObject *self, PyObject *arg)
{
    (void)self;
    int64_t *k = stream_arg(arg, "stream_take");
    if (k == NULL)
        return NULL;
    /* The tuples first: allocating one may collect garbage, which can run Python and let
     * the filling thread in. Between the take and the return nothing below runs Python. */
    enum { N_HEADER = 7 };
    PyObject *got = PyTuple_New(2), *header = PyTuple_New(N_HEADER);
    if (got == NULL || header == NULL) {
        Py_XDECREF(got);
        Py_XDECREF(header);
        return NULL;
    }
    const int64_t b = s_take(k);
    if (b < 0) {
        Py_DECREF(got);
        Py_DECREF(header);
        if (b == -1)
            Py_RETURN_NONE;
        PyErr_SetString(PyExc_ValueError, "stream_take: a frame is taken already; expected "
                        "it released before the next is taken");
        return NULL;
    }
    const int64_t *h = s_heads(k, b);
    const double *f = s_times(k, b);
    PyObject *items[N_HEADER] = {
        PyLong_FromLongLong(h[H_SEQ]), PyLong_FromLongLong(h[H_TICK]),
        PyLong_FromLongLong(h[H_TICKS]), PyFloat_FromDouble(f[F_T]),
        PyFloat_FromDouble(f[F_WALL]), PyFloat_FromDouble(f[F_LATE]),
        PyLong_FromLongLong(h[H_DROPPED]),
    };
    PyObject *slot = PyLong_FromLongLong(b);
    int ok = slot != NULL;
    for (Py_ssize_t i = 0; i < N_HEADER; i++) {
        ok = ok && items[i] != NULL;
        PyTuple_SET_ITEM(header, i, items[i]); /* steals it; a NULL is skipped on release */
    }
    if (!ok) {
        s_untake(k, b); /* a failed allocation loses nothing */
        Py_XDECREF(slot);
        Py_DECREF(header);
        Py_DECREF(got);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    PyTuple_SET_ITEM(got, 0, slot);
    PyTuple_SET_ITEM(got, 1, header);
    return got;
}

PyDoc_STRVAR(stream_take_legacy_doc,
"stream_take_legacy(stream)\n--\n\n"
"The taker's step for frames of an older size queued before the pool's: (discard, take,\n"
"dropped): discard that many from the front of its queue of them (dropped since), then\n"
"take the next one if take, its dropped count being dropped.");

static PyObject *py_stream_take_legacy(PyObject *self, PyObject *arg)
{
    (void)self;
    int64_t *k = stream_arg(arg, "stream_take_legacy");
    if (k == NULL)
        return NULL;
    PyObject *got = PyTuple_New(3); /* first: it may run Python (see stream_take) */
    if (got == NULL)
        return NULL;
    PyObject *dropped = PyLong_FromLongLong(k[K_DROPPED]);
    PyObject *discard = PyLong_FromLongLong(k[K_LEGACY_DROPPED]);
    if (dropped == NULL || discard == NULL) { /* nothing stepped yet */
        Py_XDECREF(dropped);
        Py_XDECREF(discard);
        Py_DECREF(got);
        return NULL;
    }
    int serve;
    s_take_legacy(k, &serve);
    PyTuple_SET_ITEM(got, 0, discard);
    PyTuple_SET_ITEM(got, 1, PyBool_FromLong(serve));
    PyTuple_SET_ITEM(got, 2, dropped);
    return got;
}

PyDoc_STRVAR(stream_release_doc,
"stream_release(stream, buffer)\n--\n\n"
"Give a buffer stream_take returned back to the pool. ValueError for one not out.");

static PyObject *py_stream_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[2];
    static const char *const names[] = {"stream", "buffer"};
    if (int_args(args, nargs, 2, 2, "stream_release", names, v) < 0)
        return NULL;
    int64_t *k = stream_block(v[0], "stream_release");
    const int64_t b = v[1];
    if (k == NULL)
        return NULL;
    if (!s_release(k, b)) {
        PyErr_Format(PyExc_ValueError, "stream_release: buffer %lld is not taken; expected "
                     "one stream_take returned and not released since", (long long)b);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(stream_count_doc,
"stream_count(stream, frames)\n--\n\n"
"Count frames lost after they left the queue (ProbeStream.count_dropped); frames >= 0.");

static PyObject *py_stream_count(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[2];
    static const char *const names[] = {"stream", "frames"};
    if (int_args(args, nargs, 2, 2, "stream_count", names, v) < 0)
        return NULL;
    int64_t *k = stream_block(v[0], "stream_count");
    const int64_t frames = v[1];
    if (k == NULL)
        return NULL;
    if (frames < 0) {
        PyErr_Format(PyExc_ValueError, "stream_count: %lld frames; expected >= 0",
                     (long long)frames);
        return NULL;
    }
    k[K_DROPPED] += frames;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(streams_record_doc,
"streams_record(loop, table, n_streams, count, first, dt)\n--\n\n"
"The count ring rows from the reader's tail of run_ticks' ring (loop: address of its\n"
"int64 loop array) into every stream's frames, row by row (Engine._collect's loop): the\n"
"rows are ticks first, first + 1, ..., at t = (index + 1) * dt. table: address of int64\n"
"(n_streams, 3): each stream's control block, its value's byte offset in a row and the\n"
"value's kind (0: the frame row's bytes, 1: float64 values). Returns True if a frame\n"
"completed. The rows stay the reader's until ring_done.");

static PyObject *py_streams_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t v[5];
    double dt;
    static const char *const names[] = {"loop", "table", "n_streams", "count", "first"};
    if (int_args(args, nargs, 6, 5, "streams_record", names, v) < 0 ||
        as_f64(args[5], &dt, "dt") < 0)
        return NULL;
    const int64_t *loop = (const int64_t *)(intptr_t)v[0];
    const int64_t *table = (const int64_t *)(intptr_t)v[1];
    const int64_t n = v[2], count = v[3];
    if (!ring_ok(loop, "streams_record"))
        return NULL;
    const int64_t tail = loop[L_TAIL], row_bytes = loop[L_ROW_BYTES];
    if (count < 0 || count > __atomic_load_n(&loop[L_HEAD], __ATOMIC_ACQUIRE) - tail ||
        n < 0 || (n > 0 && table == NULL)) {
        PyErr_Format(PyExc_ValueError, "streams_record: %lld rows of %lld streams; expected "
                     "0 to the rows ready, and a table", (long long)count, (long long)n);
        return NULL;
    }
    for (int64_t s = 0; s < n; s++) {
        const int64_t *e = table + 3 * s, *k = (const int64_t *)(intptr_t)e[0];
        const int64_t bytes = stream_ok(k) ? k[K_ROW_BYTES] * (e[2] == SRC_F64 ? 2 : 1) : -1;
        if (bytes < 0 || (e[2] != SRC_SAME && !(e[2] == SRC_F64 && k[K_FLOAT])) ||
            e[1] < 8 * R_META || e[1] > row_bytes || bytes > row_bytes - e[1]) {
            PyErr_Format(PyExc_ValueError, "streams_record: stream %lld's entry does not fit "
                         "a row of %lld bytes; expected a stream block, an offset past the "
                         "row's header and a kind", (long long)s, (long long)row_bytes);
            return NULL;
        }
    }
    int done = s_record_rows(table, n, (const uint8_t *)(intptr_t)loop[L_RING],
                             loop[L_CAPACITY], row_bytes, tail, count, v[4], dt);
    if (done < 0) {
        PyErr_SetString(PyExc_ValueError, "streams_record: a malformed stream block; "
                        "expected one laid out as _native_streams.h's");
        return NULL;
    }
    return PyBool_FromLong(done);
}
