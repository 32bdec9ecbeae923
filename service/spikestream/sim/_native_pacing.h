/* A run of live ticks: the loop's layout (L_*, T_*, R_*), the host's CPU readings and
 * the spin's adaptation.
 * This file is included by _native.c only, in the place of the section it holds: it
 * uses what the lines above its #include define. */

/* ------------------------------------------------------------------ a run of ticks */

/* run_ticks keeps the tick thread in compiled code across ticks: each tick waits for its
 * deadline, applies the inputs, runs the program and copies what the rest of the service
 * needs (the input state, each input's value, each probe's value) into the next row of a
 * ring that the I/O thread reads; it takes the GIL again only when asked to (a command,
 * stop), when a tick is due before the previous one finished (the pacer's overrun policy
 * decides in Python) or when the ring is full. The loop array (int64) holds: */
enum {
    L_STOP,      /* nonzero: return at the next tick (any thread sets it) */
    L_HEAD,      /* rows written (the loop; release store) */
    L_TAIL,      /* rows read (the reader; acquire load here) */
    L_CAPACITY,  /* rows in the ring */
    L_ROW_BYTES, /* bytes per row, a multiple of 8 */
    L_RING,      /* address of the ring */
    L_NEXT,      /* index of the next tick on the pacer's grid */
    L_K0,        /* the grid's anchor tick: deadline(k) = t0 + (k - k0) * period */
    L_COPIES,    /* address of the copy table, int64 (n_copies, 3): source, bytes, offset */
    L_N_COPIES,
    L_FILL,      /* address of int64 (n_streams, 2): ticks left in the frame, ticks per frame */
    L_N_STREAMS,
    L_ARMED,     /* 1: the reader waits for a wake-up (the loop clears it as it writes) */
    L_EVENTFD,   /* written when a frame completes and the reader is armed; -1: none */
    L_TICKS,     /* ticks this call ran (an output) */
    L_BURST,     /* late ticks run in a row (in and out: the pacer's catch-up burst) */
    L_CATCHUP,   /* the catch-up policy's max_catchup, or 0: every overrun returns */
    /* The spin's adaptation to a contended CPU (adapt_spin); all but L_SCHEDSTAT,
     * L_ADAPT_TICKS, L_CALM_WINDOWS and L_HOT_WINDOWS carry over from call to call. */
    L_SCHEDSTAT,     /* the tick thread's /proc/thread-self/schedstat, or -1: no adapting */
    L_ADAPT_TICKS,   /* ticks between two readings of it */
    L_CALM_WINDOWS,  /* calm readings in a row that end a contended spell */
    L_DELAY_NS,      /* the run delay (ns) at the last reading, or -1 before the first */
    L_DELAY_AT,      /* when it was read (CLOCK_MONOTONIC, ns) */
    L_WINDOW,        /* ticks since then */
    L_CONTENDED,     /* 1: the tick thread waits for a CPU; ticks spin times[T_BUSY_SPIN] */
    L_CALM,          /* calm readings in a row while contended */
    L_BUSY_TICKS,    /* ticks that waited with the contended spin (an output, cumulative) */
    L_SPELLS,        /* contended spells begun (an output, cumulative) */
    L_HOT_WINDOWS,   /* contended readings in a row that begin a spell */
    L_HOT,           /* contended readings in a row outside a spell */
    /* Two stages (see stage2_thread): the tick's program split in two, the second run by
     * a helper thread while the tick thread starts the next tick's first. */
    L_PROGRAM2,   /* address of the second stage's program, or 0: one stage */
    L_N_OPS2,     /* its ops */
    L_LATCHES,    /* address of int64 (n_latches, 3): source, destination, bytes */
    L_N_LATCHES,
    L_MAIN_COPIES, /* with two stages: copies 0 .. this-1 are the first stage's */
    L_THREADED,   /* 1: the last call ran the second stage on a helper thread (an output) */
    L_INLINE,     /* nonzero: run the second stage on the tick thread, after the first */
    L_PIN,        /* nonzero: pin the two threads to different CPUs for the call (pin_stages) */
    L_PINNED,     /* 1: the last call did (an output) */
    /* The machine's floor (benchmarks only): nonzero replaces the first or the second
     * stage's ops by a busy wait of this many nanoseconds, from the stage's start, so a
     * run paces, hands over and copies as the network's would but reads no weights. */
    L_FLOOR_NS1,
    L_FLOOR_NS2,
    /* The host's idle CPU time gates the adaptation (adapt_spin): */
    L_PROCSTAT,   /* /proc/stat, or -1: the run delay alone decides */
    L_IDLE_TICKS, /* its idle + iowait at the last reading (clock ticks), or -1 */
    L_ALL_TICKS,  /* its total at the last reading */
    /* The tick records (_native_record.h), written as each tick is handed on: */
    L_PACE,       /* address of the pacer's pace record descriptor, or 0: none */
    L_WORK,       /* address of the tick work window's descriptor, or 0: none */
    /* Two stages, when one thread is late (await_or_take, await_post_or_take): */
    L_TAKE_NS,    /* the tick thread runs a posted tick's second stage itself when the
                   * helper has not begun it this many ns after the hand-over, and the
                   * helper a tick's first stage when the tick thread has not begun it
                   * this many ns after its deadline; < 0: never */
    L_TAKEOVERS,  /* ticks whose second stage the tick thread ran so (an output, cumulative) */
    L_HELPER_LAG_NS, /* tests only: the helper sleeps this many ns after each hand-over it
                      * sees before it claims the tick, as a helper woken late would */
    L_HELPER_HOLD_NS, /* tests only: and this many ns in each second stage it runs, after
                       * the latch, as a helper preempted in the stage would */
    L_STARTS_TAKEN, /* ticks whose first stage the helper ran so (an output, cumulative) */
    L_MAIN_LAG_NS,  /* tests only: after its wait for the deadline of a tick whose grid
                     * index is a multiple of L_MAIN_LAG_EVERY, the tick thread sleeps this
                     * many ns before it claims the tick, as a tick thread woken late would */
    L_MAIN_LAG_EVERY,
    L_EARLY,        /* nonzero: a tick starts as soon as an input was posted since the last
                     * tick applied its inputs, though never before the previous tick's
                     * deadline (wait_for_tick) */
    L_EARLY_TICKS,  /* ticks the tick thread started so, before their deadlines (an output,
                     * cumulative) */
    L_COLUMNS
};
/* times (float64): the grid's t0 and period, the spin, and the adaptation's busy spin and
 * thresholds (adapt_spin). */
enum { T_T0, T_PERIOD, T_SPIN, T_BUSY_SPIN, T_HIGH, T_LOW, T_IDLE, T_COLUMNS };
/* A row starts with float64 start, deadline, wall_start, wall_end (CLOCK_REALTIME) and
 * end (when the inputs and the program were done, before the copies; CLOCK_MONOTONIC as
 * start), int64 k and int64 flags (1: the tick was due before the previous one ended and
 * ran at once, a catch-up tick), then the copies at their offsets. */
enum { R_START, R_DEADLINE, R_WALL_START, R_WALL_END, R_END, R_INDEX, R_FLAGS, R_META };
enum { RUN_CONTROL, RUN_OVERRUN, RUN_FULL };

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The second field of a schedstat file (the thread's run delay: ns spent runnable, waiting
 * for a CPU, since it started), or -1 when it cannot be read. */
static int64_t read_run_delay(int fd)
{
    char buf[128];
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    if (got <= 0)
        return -1;
    buf[got] = 0;
    char *end;
    errno = 0;
    (void)strtoull(buf, &end, 10); /* time on a CPU */
    if (end == buf || errno)
        return -1;
    char *second = end;
    unsigned long long delay = strtoull(second, &end, 10);
    if (end == second || errno || delay > (unsigned long long)INT64_MAX)
        return -1;
    return (int64_t)delay;
}

/* The first line of /proc/stat (the host's CPU time, in clock ticks): *idle gets idle +
 * iowait, *all the sum of user, nice, system, idle, iowait, irq and softirq: the time the
 * CPUs were this machine's. Steal (time the hypervisor gave to other guests) is left out:
 * ticks made late by it are not helped by giving up the spin (on the 2-vCPU VM, a run
 * that began a spell in a minute of heavy steal was 8.8 % late against an empty tick's
 * 1.0 %). Returns 0, or -1 when it cannot be read. */
static int read_host_idle(int fd, int64_t *idle, int64_t *all)
{
    char buf[256];
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    if (got <= 4 || memcmp(buf, "cpu ", 4) != 0)
        return -1;
    buf[got] = 0;
    char *at = buf + 4, *end;
    int64_t field[8], sum = 0;
    for (int f = 0; f < 8; f++) {
        errno = 0;
        unsigned long long x = strtoull(at, &end, 10);
        if (end == at || errno || x > (unsigned long long)(INT64_MAX / 16))
            return -1;
        field[f] = (int64_t)x;
        sum += field[f];
        at = end;
    }
    *idle = field[3] + field[4];
    *all = sum - field[7];
    return 0;
}

/* Whether the host's CPUs had idle time since the last reading: at least times[T_IDLE]
 * of their time (read_host_idle). 0 when unknown (no /proc/stat, a failed read, the
 * first reading): the run delay alone decides then. The read costs about 11 us (the
 * kernel formats the whole file), once every loop[L_ADAPT_TICKS] ticks, after the tick
 * is handed on. */
static int host_had_idle(int64_t *loop, const double *times)
{
    if (loop[L_PROCSTAT] < 0)
        return 0;
    int64_t idle, all;
    if (read_host_idle((int)loop[L_PROCSTAT], &idle, &all) < 0) {
        loop[L_IDLE_TICKS] = -1;
        return 0;
    }
    int had = 0;
    if (loop[L_IDLE_TICKS] >= 0 && all > loop[L_ALL_TICKS] && idle >= loop[L_IDLE_TICKS])
        had = (double)(idle - loop[L_IDLE_TICKS]) >=
              times[T_IDLE] * (double)(all - loop[L_ALL_TICKS]);
    loop[L_IDLE_TICKS] = idle;
    loop[L_ALL_TICKS] = all;
    return had;
}

/* Every loop[L_ADAPT_TICKS] ticks, the share of wall time the tick thread spent waiting
 * for a CPU since the last reading. After loop[L_HOT_WINDOWS] readings in a row above
 * times[T_HIGH] a contended spell begins (one reading is a transient: the service
 * starting up, say): ticks spin times[T_BUSY_SPIN] instead of times[T_SPIN]; it ends
 * after loop[L_CALM_WINDOWS] readings in a row below times[T_LOW].
 *
 * Why: with every CPU busy (CPU-bound neighbours), the spin is what makes the tick thread
 * late. Time spent spinning counts against the thread's fair share, and a thread that has
 * used more than its share is not eligible to preempt the task running when its timer
 * fires (EEVDF); it then waits for the next scheduler tick, 1 to 4 ms at HZ=250
 * (perf sched, docs/PERFORMANCE.md). On an idle CPU the spin is what covers the wake-up,
 * so it stays long there.
 *
 * A reading is contended only while the host's CPUs were busy: less than times[T_IDLE]
 * of their time (steal aside) idle since the last reading (/proc/stat,
 * loop[L_PROCSTAT]); one with more idle time counts as calm. The tick thread's run delay
 * also counts its waits behind the service's own I/O thread and the broker: on a quiet
 * 2-vCPU VM (2026-12-02) it read above 5 % in two readings in a row often enough to begin
 * a spell in most 20 s runs of the seed at 5,000 frames/s, and below 1 % too seldom to
 * end it (p90 1.4-1.9 %), so the spell lasted the run: runs that spent most of their
 * ticks in one were 1.5-3.0 % late, against 0.15-0.45 % in runs that began none. The
 * host was 54-62 % idle then (per 100 ms), 19-38 % (p10-p90) beside one CPU-bound
 * process and 0 % (median) beside two.
 *
 * Without a schedstat to read, or when a reading fails, no spell is on: the spin is
 * never left at the busy spin on a signal that is gone. The reading's state carries over
 * from one run_ticks call to the next, so the first reading after a pause spans the
 * pause (its share is low: at most one calm reading too many). */
static void adapt_spin(int64_t *loop, const double *times)
{
    if (loop[L_SCHEDSTAT] < 0) {
        loop[L_CONTENDED] = loop[L_CALM] = loop[L_HOT] = 0;
        return;
    }
    if (++loop[L_WINDOW] < loop[L_ADAPT_TICKS])
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    const int64_t delay = read_run_delay((int)loop[L_SCHEDSTAT]);
    /* Read every time, so the first reading with a run delay has its idle time too. */
    const int idle = delay >= 0 && host_had_idle(loop, times);
    if (delay < 0) {
        loop[L_CONTENDED] = loop[L_CALM] = loop[L_HOT] = 0;
    } else if (loop[L_DELAY_NS] >= 0 && at > loop[L_DELAY_AT]) {
        const double share = (double)(delay - loop[L_DELAY_NS]) / (double)(at - loop[L_DELAY_AT]);
        if (!idle && share > times[T_HIGH]) {
            loop[L_CALM] = 0;
            if (!loop[L_CONTENDED] && ++loop[L_HOT] >= loop[L_HOT_WINDOWS]) {
                loop[L_CONTENDED] = 1;
                loop[L_SPELLS] += 1;
                loop[L_HOT] = 0;
            }
        } else {
            /* With a CPU idle, the spin covers the wake-up from it: calm, whatever the
             * delay. */
            loop[L_HOT] = 0;
            if (loop[L_CONTENDED] && (idle || share < times[T_LOW])) {
                if (++loop[L_CALM] >= loop[L_CALM_WINDOWS])
                    loop[L_CONTENDED] = loop[L_CALM] = 0;
            } else {
                loop[L_CALM] = 0;
            }
        }
    }
    loop[L_DELAY_NS] = delay;
    loop[L_DELAY_AT] = at;
    loop[L_WINDOW] = 0;
}

/* The spin the next tick waits with. */
static double spin_now(const int64_t *loop, const double *times)
{
    return loop[L_CONTENDED] ? times[T_BUSY_SPIN] : times[T_SPIN];
}

/* Whether the adaptation's columns can be run: none to read, or a descriptor and
 * intervals of at least one. */
static int adaptation_ok(const int64_t *loop)
{
    return loop[L_SCHEDSTAT] < 0 || (loop[L_SCHEDSTAT] <= INT_MAX && loop[L_PROCSTAT] <= INT_MAX &&
                                     loop[L_ADAPT_TICKS] >= 1 &&
                                     loop[L_CALM_WINDOWS] >= 1 && loop[L_HOT_WINDOWS] >= 1);
}
