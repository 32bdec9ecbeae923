/* Tick records in compiled code: runtime/stats.py's LatenessStats, LatenessWindow and the
 * pacer's pace record, written by the tick thread at the end of each tick of a run
 * (run_ticks), without the GIL, and by the Python classes through record_* below.
 *
 * Each record keeps all its state in two arrays the Python class allocates once (an
 * int64 block and a float64 block, laid out as below) and reads itself: a descriptor
 * (int64) holds its kind's tag, their addresses and lengths, and its sizes; the lengths
 * are checked against the layout its sizes give before a record is written, so a
 * descriptor of another kind or another layout is refused, never written through. This
 * file is included by _native.c only.
 *
 * The arithmetic is the Python classes', operation for operation (the bucket of a sample
 * is the same ceil(log10(x / lowest) * per_decade) in double precision, the sums are
 * added in the same order), so a record written here is bit for bit the one the classes
 * would have written: tests/runtime/test_stats.py draws samples with hypothesis and
 * compares both blocks after every one. */

/* The geometry of a lateness histogram, at the start of each float block. */
enum { G_LOWEST, G_INV_LOWEST, G_HIGHEST, G_PER_DECADE, G_COLUMNS };

/* Every descriptor starts with its kind's tag, the two blocks' addresses and lengths. */
enum { D_TAG, D_INTS, D_FLOATS, D_N_INTS, D_N_FLOATS, D_HEAD };
#define TAG_STATS 0x53504b5245430000LL /* "SPKREC" and the kind */
#define TAG_WINDOW (TAG_STATS + 1)
#define TAG_PACE (TAG_STATS + 2)

/* LatenessStats. Descriptor: */
enum { S_BUCKETS = D_HEAD, S_THRESHOLDS, S_COLUMNS };
/* ints: [count | counts (B) | over (T)]; floats: [geometry | sum, max, min | thresholds]. */
enum { SI_COUNT, SI_COUNTS };
enum { SF_SUM = G_COLUMNS, SF_MAX, SF_MIN, SF_THRESHOLDS };

/* LatenessWindow. Descriptor: */
enum { W_BUCKETS = D_HEAD, W_THRESHOLDS, W_SLOTS, W_COLUMNS };
/* ints: [epoch, base | counts (S*B) | over (S*max(1, T)) | n (S) | intervals (S) |
 *        epochs (S) | cur_over (T)];
 * floats: [geometry, inv_bucket | cur (6: ticks, sum, max, min, intervals, active) |
 *          sum (S) | active (S) | max (S) | min (S) | thresholds (T)]. */
enum { WI_EPOCH, WI_BASE, WI_COUNTS };
enum { WF_INV_BUCKET = G_COLUMNS, WF_CUR };
enum { CUR_TICKS, CUR_SUM, CUR_MAX, CUR_MIN, CUR_INTERVALS, CUR_ACTIVE, CUR_COLUMNS };
/* The epoch of a slot being filled or cleared, and of no bucket yet (stats.py's _NONE). */
#define NO_EPOCH (-((int64_t)1 << 62))

/* The pacer's pace record. Descriptor: */
enum { P_STATS = D_HEAD, P_WINDOW, P_COLUMNS };
/* ints: [ticks, intervals, have_prev]; floats: [prev_start, active]. */
enum { PI_TICKS, PI_INTERVALS, PI_HAVE_PREV, PI_COLUMNS };
enum { PF_PREV_START, PF_ACTIVE, PF_COLUMNS };

static inline int64_t *rec_ints(const int64_t *d) { return (int64_t *)(intptr_t)d[D_INTS]; }
static inline double *rec_floats(const int64_t *d) { return (double *)(intptr_t)d[D_FLOATS]; }

/* The bucket of a sample x >= 0 (seconds): LatenessStats._index. Clamped to the buckets
 * that exist, so no rounding can index past the histogram. */
static int64_t bucket_of(const double *g, int64_t buckets, double x)
{
    const int64_t overflow = buckets - 1;
    if (x == 0.0)
        return 0;
    if (x <= g[G_LOWEST])
        return 1;
    if (x <= g[G_HIGHEST]) {
        const int64_t i = 1 + (int64_t)ceil(log10(x * g[G_INV_LOWEST]) * g[G_PER_DECADE]);
        return i < 1 ? 1 : (i > overflow ? overflow : i);
    }
    return overflow;
}

/* Count x in over[i] for every threshold below it (thresholds ascending). */
static void count_over(const double *thresholds, int64_t n, int64_t *over, double x)
{
    for (int64_t i = 0; i < n && x > thresholds[i]; i++)
        over[i] += 1;
}

/* A sample x into a [sum, max, min] run of floats (the stats' and the filling bucket's). */
static void add_sample(double *sum_max_min, double x)
{
    sum_max_min[0] += x;
    if (x > sum_max_min[1])
        sum_max_min[1] = x;
    if (x < sum_max_min[2])
        sum_max_min[2] = x;
}

/* LatenessStats.record. */
static void record_stats(const int64_t *d, double x)
{
    int64_t *ints = rec_ints(d);
    double *f = rec_floats(d);
    const int64_t buckets = d[S_BUCKETS];
    if (!(x > 0.0)) /* also NaN: lateness is never negative, and a NaN must not poison */
        x = 0.0;
    ints[SI_COUNTS + bucket_of(f, buckets, x)] += 1;
    ints[SI_COUNT] += 1;
    add_sample(f + SF_SUM, x); /* SF_SUM, SF_MAX, SF_MIN */
    count_over(f + SF_THRESHOLDS, d[S_THRESHOLDS], ints + SI_COUNTS + buckets, x);
}

/* The window's arrays, by the layout above. */
struct window {
    int64_t *ints, *counts, *over, *n, *intervals, *epochs, *cur_over;
    double *floats, *cur, *sum, *active, *max, *min, *thresholds;
    int64_t buckets, n_thresholds, over_columns, slots;
};

static struct window window_of(const int64_t *d)
{
    struct window w;
    w.buckets = d[W_BUCKETS];
    w.n_thresholds = d[W_THRESHOLDS];
    w.over_columns = w.n_thresholds > 0 ? w.n_thresholds : 1;
    w.slots = d[W_SLOTS];
    w.ints = rec_ints(d);
    w.counts = w.ints + WI_COUNTS;
    w.over = w.counts + w.slots * w.buckets;
    w.n = w.over + w.slots * w.over_columns;
    w.intervals = w.n + w.slots;
    w.epochs = w.intervals + w.slots;
    w.cur_over = w.epochs + w.slots;
    w.floats = rec_floats(d);
    w.cur = w.floats + WF_CUR;
    w.sum = w.cur + CUR_COLUMNS;
    w.active = w.sum + w.slots;
    w.max = w.active + w.slots;
    w.min = w.max + w.slots;
    w.thresholds = w.min + w.slots;
    return w;
}

/* Python's e % slots (floor modulo, never negative). */
static int64_t slot_of(int64_t epoch, int64_t slots)
{
    const int64_t s = epoch % slots;
    return s < 0 ? s + slots : s;
}

/* LatenessWindow.flush: the filling bucket's figures into its slot. The slot's epoch is
 * stored last (release), so a reader on another thread that sees it sees the figures. */
static void window_flush(const struct window *w)
{
    const int64_t epoch = w->ints[WI_EPOCH];
    if (epoch == NO_EPOCH)
        return;
    const int64_t s = slot_of(epoch, w->slots);
    const double *cur = w->cur;
    w->n[s] = (int64_t)cur[CUR_TICKS];
    w->sum[s] = cur[CUR_SUM];
    w->max[s] = cur[CUR_MAX];
    w->min[s] = cur[CUR_MIN];
    w->intervals[s] = (int64_t)cur[CUR_INTERVALS];
    w->active[s] = cur[CUR_ACTIVE];
    memcpy(w->over + s * w->over_columns, w->cur_over, (size_t)w->n_thresholds * sizeof(int64_t));
    __atomic_store_n(&w->epochs[s], epoch, __ATOMIC_RELEASE);
}

/* LatenessWindow._advance: finish the current bucket, clear the slots passed over. */
static void window_advance(const struct window *w, int64_t epoch)
{
    window_flush(w);
    const int64_t current = w->ints[WI_EPOCH];
    int64_t first = current != NO_EPOCH && epoch > current ? current + 1 : epoch;
    if (first < epoch - w->slots + 1)
        first = epoch - w->slots + 1;
    for (int64_t e = first; e <= epoch; e++) {
        const int64_t s = slot_of(e, w->slots);
        __atomic_store_n(&w->epochs[s], NO_EPOCH, __ATOMIC_RELEASE); /* readers skip it */
        __atomic_thread_fence(__ATOMIC_RELEASE); /* ... before they can see it cleared */
        memset(w->counts + s * w->buckets, 0, (size_t)w->buckets * sizeof(int64_t));
    }
    w->ints[WI_EPOCH] = epoch;
    w->ints[WI_BASE] = slot_of(epoch, w->slots) * w->buckets;
    double *cur = w->cur;
    cur[CUR_TICKS] = 0.0;
    cur[CUR_SUM] = 0.0;
    cur[CUR_MAX] = -INFINITY;
    cur[CUR_MIN] = INFINITY;
    cur[CUR_INTERVALS] = 0.0;
    cur[CUR_ACTIVE] = 0.0;
    memset(w->cur_over, 0, (size_t)w->n_thresholds * sizeof(int64_t));
}

/* LatenessWindow.record: one tick that started at now (seconds), lateness x (seconds),
 * interval seconds after the previous one (< 0: none). A time whose bucket no int64
 * holds (not a clock's) is not recorded. */
static void record_window(const int64_t *d, double now, double x, double interval)
{
    const struct window w = window_of(d);
    const double e = now * w.floats[WF_INV_BUCKET];
    if (!(e > -4e18 && e < 4e18)) /* NaN, inf: as LatenessWindow.record_python */
        return;
    const int64_t epoch = (int64_t)floor(e);
    if (epoch != w.ints[WI_EPOCH])
        window_advance(&w, epoch);
    if (!(x > 0.0))
        x = 0.0;
    w.counts[w.ints[WI_BASE] + bucket_of(w.floats, w.buckets, x)] += 1;
    double *cur = w.cur;
    cur[CUR_TICKS] += 1.0;
    add_sample(cur + CUR_SUM, x); /* CUR_SUM, CUR_MAX, CUR_MIN */
    count_over(w.thresholds, w.n_thresholds, w.cur_over, x);
    if (interval >= 0.0) {
        cur[CUR_INTERVALS] += 1.0;
        cur[CUR_ACTIVE] += interval;
    }
}

/* Pacer.release's record of a tick that started at start (seconds) lateness seconds
 * after its deadline: the tick count, the lateness since start and in the windows, and
 * the interval since the previous tick's start. */
static void record_pace(const int64_t *d, double start, double lateness)
{
    int64_t *ints = rec_ints(d);
    double *f = rec_floats(d);
    ints[PI_TICKS] += 1;
    record_stats((const int64_t *)(intptr_t)d[P_STATS], lateness);
    double interval = -1.0;
    if (ints[PI_HAVE_PREV]) {
        interval = start - f[PF_PREV_START];
        f[PF_ACTIVE] += interval;
        ints[PI_INTERVALS] += 1;
    } else {
        ints[PI_HAVE_PREV] = 1;
    }
    record_window((const int64_t *)(intptr_t)d[P_WINDOW], start, lateness, interval);
    f[PF_PREV_START] = start;
}

/* Checks of a descriptor made by the Python classes, before it is used: its kind's tag,
 * its blocks, and their lengths against the layout its sizes give (the sizes bounded, so
 * no product overflows). */
static int blocks_ok(const int64_t *d, int64_t tag, int64_t n_ints, int64_t n_floats)
{
    return d[D_TAG] == tag && d[D_INTS] != 0 && d[D_FLOATS] != 0 && d[D_N_INTS] == n_ints &&
           d[D_N_FLOATS] == n_floats;
}

#define MAX_SIZE ((int64_t)1 << 24)

static int stats_ok(const int64_t *d)
{
    if (d == NULL || d[D_TAG] != TAG_STATS)
        return 0;
    const int64_t b = d[S_BUCKETS], t = d[S_THRESHOLDS];
    return b >= 3 && b < MAX_SIZE && t >= 0 && t < MAX_SIZE &&
           blocks_ok(d, TAG_STATS, 1 + b + t, SF_THRESHOLDS + t);
}

static int window_ok(const int64_t *d)
{
    if (d == NULL || d[D_TAG] != TAG_WINDOW)
        return 0;
    const int64_t b = d[W_BUCKETS], t = d[W_THRESHOLDS], s = d[W_SLOTS];
    if (!(b >= 3 && b < MAX_SIZE && t >= 0 && t < MAX_SIZE && s >= 2 && s < MAX_SIZE))
        return 0;
    const int64_t tw = t > 0 ? t : 1;
    return blocks_ok(d, TAG_WINDOW, WI_COUNTS + s * (b + tw + 3) + t,
                     WF_CUR + CUR_COLUMNS + 4 * s + t);
}

static int pace_ok(const int64_t *d)
{
    return d != NULL && blocks_ok(d, TAG_PACE, PI_COLUMNS, PF_COLUMNS) &&
           stats_ok((const int64_t *)(intptr_t)d[P_STATS]) &&
           window_ok((const int64_t *)(intptr_t)d[P_WINDOW]);
}
