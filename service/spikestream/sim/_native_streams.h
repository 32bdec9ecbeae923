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
