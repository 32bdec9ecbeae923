/* A big network's tick in two stages on two threads: hand-over, latching, take-over.
 * This file is included by _native.c only, in the place of the section it holds: it
 * uses what the lines above its #include define. */

/* ------------------------------------------------------------------ two stages
 *
 * A big network's tick is split in two programs (sim/stages.py): the tick thread runs
 * the first stage of tick k, hands the tick over, and a helper thread runs its second
 * stage while the tick thread waits for tick k+1 and starts its first. On a 2-vCPU VM
 * (2026-12-02, bench/tickthreads.py) one thread stepped a 150k chain, 25 MB of arrays, in
 * 1.06 ms per tick; its two halves, stepped at the same time on two threads, in 0.42 and
 * 0.39 ms: each core keeps half the arrays in its caches (docs/PERFORMANCE.md, "Two tick
 * threads").
 *
 * Every op runs as in one stage, on the same values, so the results are the same bits.
 * The split (sim/stages.py) allows no array written in both stages and none the first
 * stage reads after the second writes it; what the second reads from the first (a
 * population's input current at the cut, a spike count, an input's value) is latched:
 * copied at the start of the second stage into arrays of its own, after which the first
 * stage of the next tick may overwrite the originals. A ring row is published by the
 * helper once both stages are done and each has copied what it wrote.
 *
 * The two threads meet at three counters (ticks of this call): posted (first stage done,
 * row header written), latched and done. Each waits on a futex word (a "bell") after a
 * short spin, so an idle helper costs no CPU: the other core is the I/O thread's and the
 * broker's too.
 *
 * Either thread may run the other's stage of a tick when the other is late to begin it
 * (L_TAKE_NS): the tick thread a posted tick's second stage (await_or_take), the helper a
 * due tick's first (await_post_or_take). Both claim each stage with a compare-and-swap in
 * tick order (started, claimed), and neither begins one before the one it follows has
 * ended or latched, so whichever thread runs a stage, the results are the same bits. */
#define SPIN_POLLS 200

struct stages {
    const int64_t *v;
    int64_t *loop;
    int64_t head0;
    /* Counts of this call's ticks modulo 2**32 (compared by reached(), never more than two
     * apart); rows are numbered with the int64 tick index. */
    uint32_t posted, latched, done, quit;
    /* Ticks whose second stage a thread has begun (claimed with a compare-and-swap, in
     * order): the helper's, or the tick thread's when the helper is late. */
    uint32_t claimed;
    /* Ticks whose first stage a thread has begun, or that the tick thread has claimed to
     * end the call at: the tick thread's, or the helper's when the tick thread is late. */
    uint32_t started;
    int64_t seq_applied;  /* the mailbox numbers the last tick read, summed (apply_inputs) */
    int64_t main_copies;  /* copies 0 .. this-1 are the first stage's */
    const double *times;  /* the call's grid (T_T0, T_PERIOD) */
    int64_t k0;           /* the grid index of the call's first tick: tick i's is k0 + i */
    int64_t posted_ns;    /* when the last first stage was handed over (CLOCK_MONOTONIC) */
    int64_t latched_ns;   /* when the last second stage latched, or the call began */
    uint32_t bell, helper_waits; /* the helper's wake-up: posted or quit changed */
    uint32_t mbell, main_waits;  /* the tick thread's: latched or done changed */
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int reached(const uint32_t *counter, uint32_t target)
{
    return (int32_t)(__atomic_load_n(counter, __ATOMIC_SEQ_CST) - target) >= 0;
}

/* Wait until *counter reaches target, or *quit is set (quit may be NULL): spin a little,
 * then sleep on the futex word bell, announcing it in *waits (ring() wakes only an
 * announced sleeper). The waiter reads the bell before the last look at the counter, so a
 * ring between the two makes the sleep return at once: no wake-up is lost. */
static void await_count(const uint32_t *counter, uint32_t target, uint32_t *bell, uint32_t *waits,
                        const uint32_t *quit)
{
    for (int polls = 0;; polls++) {
        if (reached(counter, target) || (quit != NULL && __atomic_load_n(quit, __ATOMIC_SEQ_CST)))
            return;
        if (polls < SPIN_POLLS) {
            cpu_relax();
            continue;
        }
#ifdef __linux__
        __atomic_store_n(waits, 1, __ATOMIC_SEQ_CST);
        const uint32_t b = __atomic_load_n(bell, __ATOMIC_SEQ_CST);
        if (!reached(counter, target) && !(quit != NULL && __atomic_load_n(quit, __ATOMIC_SEQ_CST)))
            syscall(SYS_futex, bell, FUTEX_WAIT_PRIVATE, b, NULL, NULL, 0);
        __atomic_store_n(waits, 0, __ATOMIC_SEQ_CST);
#else
        (void)bell;
        (void)waits;
        sched_yield();
#endif
    }
}

/* Set *counter to value and wake the other thread if it sleeps on bell. */
static void signal_count(uint32_t *counter, uint32_t value, uint32_t *bell, const uint32_t *waits)
{
    __atomic_store_n(counter, value, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(bell, 1, __ATOMIC_SEQ_CST);
#ifdef __linux__
    if (__atomic_load_n(waits, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, bell, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)waits;
#endif
}

static char *ring_row(const int64_t *loop, int64_t head)
{
    return (char *)(intptr_t)loop[L_RING] + (head % loop[L_CAPACITY]) * loop[L_ROW_BYTES];
}

static void copy_into(char *row, const int64_t *copies, int64_t from, int64_t to)
{
    for (int64_t c = from; c < to; c++) {
        const int64_t *e = copies + 3 * c;
        memcpy(row + e[2], (const void *)(intptr_t)e[0], (size_t)e[1]);
    }
}

/* The end of a tick, once its kernels are done (at `end`): the copies from `first_copy`
 * on, the row's end times; then the row is published and the reader woken if a frame is
 * complete. */
static void finish_tick(int64_t *loop, int64_t head, int64_t first_copy, double end)
{
    char *row = ring_row(loop, head);
    copy_into(row, (const int64_t *)(intptr_t)loop[L_COPIES], first_copy, loop[L_N_COPIES]);
    double *meta = (double *)row;
    meta[R_WALL_END] = wall_now();
    meta[R_END] = end;
    /* Read before the row is published: once the reader has it, the tick thread may
     * write the row again while this (the helper, with two stages) goes on. */
    const double start = meta[R_START], deadline = meta[R_DEADLINE];
    __atomic_store_n(&loop[L_HEAD], head + 1, __ATOMIC_RELEASE);
    int64_t *fill = (int64_t *)(intptr_t)loop[L_FILL];
    int frame = 0;
    for (int64_t s = 0; s < loop[L_N_STREAMS]; s++) {
        if (--fill[2 * s] <= 0) {
            fill[2 * s] = fill[2 * s + 1];
            frame = 1;
        }
    }
    if (frame && loop[L_EVENTFD] >= 0 && __atomic_exchange_n(&loop[L_ARMED], 0, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;
        ssize_t written = write((int)loop[L_EVENTFD], &one, sizeof one);
        (void)written; /* a full counter (EAGAIN) already means "wake up" */
    }
    /* The records, after the hand-over: the reader, woken, reads no record of the tick,
     * so its frames never wait for them. */
    const int64_t *pace = (const int64_t *)(intptr_t)loop[L_PACE];
    if (pace != NULL)
        record_pace(pace, start, start > deadline ? start - deadline : 0.0);
    const int64_t *work = (const int64_t *)(intptr_t)loop[L_WORK];
    if (work != NULL)
        record_window(work, start, end - start, -1.0);
}

/* A stage of the floor (L_FLOOR_NS1, L_FLOOR_NS2): busy until ns after start (a wait
 * whose spin covers all of it). */
static void busy_for(double start, int64_t ns)
{
    sleep_until_mono(start + (double)ns * 1e-9, (double)ns * 1e-9);
}

/* Who runs a tick's second stage: the tick thread right after the first (one thread), the
 * helper, or the tick thread in the helper's place (await_or_take). */
enum { STAGE2_INLINE, STAGE2_HELPER, STAGE2_TAKEN };

/* The catch-up burst (L_BURST): read by both threads before they claim a tick, written
 * by the one that claimed it. */
static int64_t burst_now(const int64_t *loop)
{
    return __atomic_load_n(&loop[L_BURST], __ATOMIC_RELAXED);
}

static void set_burst(int64_t *loop, int64_t burst)
{
    __atomic_store_n(&loop[L_BURST], burst, __ATOMIC_RELAXED);
}

/* Whether a late tick may still run at once (Pacer.due()'s catch-up): the policy is
 * catch-up and the burst would stay below max_catchup. */
static int may_catch_up(const int64_t *loop)
{
    return loop[L_CATCHUP] > 0 && burst_now(loop) + 1 < loop[L_CATCHUP];
}

/* Claim tick i of this call at *counter (the next one unclaimed), or fail: the other
 * thread has. */
static int claim(uint32_t *counter, int64_t i)
{
    uint32_t expected = (uint32_t)i;
    return __atomic_compare_exchange_n(counter, &expected, (uint32_t)(i + 1), 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The first stage of this call's tick i (k on the grid, due at deadline; late: a catch-up
 * tick), by the thread that claimed it: the inputs, the first program, the row's header
 * and the first stage's copies. Returns when the inputs and the program were done. */
static double stage1_tick(struct stages *p, int64_t i, int64_t k, double deadline, int64_t late)
{
    int64_t *loop = p->loop;
    const int64_t *v = p->v;
    const double start = mono_now(), wall_start = wall_now();
    __atomic_store_n(&p->seq_applied, apply_inputs(v, start), __ATOMIC_SEQ_CST);
    if (loop[L_FLOOR_NS1] > 0)
        busy_for(start, loop[L_FLOOR_NS1]);
    else
        run_stage(v, (const int64_t *)(intptr_t)v[0], v[1]);
    const double end = mono_now();
    char *row = ring_row(loop, p->head0 + i);
    copy_into(row, (const int64_t *)(intptr_t)loop[L_COPIES], 0, p->main_copies);
    double *meta = (double *)row;
    meta[R_START] = start;
    meta[R_DEADLINE] = deadline;
    meta[R_WALL_START] = wall_start;
    ((int64_t *)row)[R_INDEX] = k;
    ((int64_t *)row)[R_FLAGS] = late;
    loop[L_NEXT] = k + 1; /* for Python, once the call returns */
    loop[L_TICKS] += 1;
    return end;
}

/* Hand tick i over to its second stage, waking whichever thread waits for it. */
static void post_stage1(struct stages *p, int64_t i)
{
    __atomic_store_n(&p->posted_ns, mono_ns(), __ATOMIC_SEQ_CST);
    signal_count(&p->posted, (uint32_t)(i + 1), &p->bell, &p->helper_waits);
    /* The tick thread too, when the helper posts: it may take the second stage. */
    __atomic_add_fetch(&p->mbell, 1, __ATOMIC_SEQ_CST);
#ifdef __linux__
    if (__atomic_load_n(&p->main_waits, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &p->mbell, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
}

/* The second stage of this call's tick i: latch, run, finish. */
static void stage2_tick(struct stages *p, int64_t i, int who)
{
    int64_t *loop = p->loop;
    const int64_t *latches = (const int64_t *)(intptr_t)loop[L_LATCHES];
    for (int64_t c = 0; c < loop[L_N_LATCHES]; c++) {
        const int64_t *e = latches + 3 * c;
        memcpy((void *)(intptr_t)e[1], (const void *)(intptr_t)e[0], (size_t)e[2]);
    }
    if (who != STAGE2_INLINE) {
        /* Tick i+1's first stage may begin: the other thread may be waiting to. */
        __atomic_store_n(&p->latched_ns, mono_ns(), __ATOMIC_SEQ_CST);
        if (who == STAGE2_HELPER)
            signal_count(&p->latched, (uint32_t)(i + 1), &p->mbell, &p->main_waits);
        else
            signal_count(&p->latched, (uint32_t)(i + 1), &p->bell, &p->helper_waits);
    }
    if (who == STAGE2_HELPER && loop[L_HELPER_HOLD_NS] > 0)
        sleep_until_mono(mono_now() + (double)loop[L_HELPER_HOLD_NS] * 1e-9, 0.0);
    if (loop[L_FLOOR_NS2] > 0)
        busy_for(mono_now(), loop[L_FLOOR_NS2]);
    else
        run_stage(p->v, (const int64_t *)(intptr_t)loop[L_PROGRAM2], loop[L_N_OPS2]);
    finish_tick(loop, p->head0 + i, p->main_copies, mono_now());
    /* The helper may wait for this tick to be done before it begins the next one. */
    if (who == STAGE2_HELPER)
        signal_count(&p->done, (uint32_t)(i + 1), &p->mbell, &p->main_waits);
    else if (who == STAGE2_TAKEN)
        signal_count(&p->done, (uint32_t)(i + 1), &p->bell, &p->helper_waits);
}

/* Sleep on *bell while it still reads b, for at most `left` s (<= 0: no limit). */
static void bell_wait(uint32_t *bell, uint32_t b, double left)
{
#ifdef __linux__
    struct timespec rel;
    if (left > 0) {
        rel.tv_sec = (time_t)left;
        rel.tv_nsec = (long)((left - (double)rel.tv_sec) * 1e9);
    }
    syscall(SYS_futex, bell, FUTEX_WAIT_PRIVATE, b, left > 0 ? &rel : NULL, NULL, 0);
#else
    (void)bell;
    (void)b;
    (void)left;
    sched_yield();
#endif
}

/* What a thread waiting for the other finds (wait_or_take's state functions): go on
 * waiting, the other's stage may be taken at *take_at, the wait is over, or the call is. */
enum { W_WAIT, W_MAY_TAKE, W_DONE, W_QUIT };

/* Wait for the other thread until state(p, i, lost, &take_at) says W_DONE or W_QUIT; once
 * it says W_MAY_TAKE and take_at (CLOCK_MONOTONIC s) has passed, take(p, i) claims and
 * runs the other's stage (1), or finds it claimed (0: lost, and the wait goes on). Spins
 * a little, then sleeps on bell, announced in *waits, until rung and, while a take is
 * ahead, no later than take_at: a claim is not rung. After reading the bell it asks
 * state() again, so that no ring is lost. Returns W_DONE, W_QUIT, or 1 if it took. */
static int wait_or_take(struct stages *p, int64_t i,
                        int (*state)(struct stages *, int64_t, int, double *),
                        int (*take)(struct stages *, int64_t), uint32_t *bell,
                        uint32_t *waits)
{
    int lost = 0;
    for (int polls = 0;; polls++) {
        double take_at = 0.0;
        const int st = state(p, i, lost, &take_at);
        if (st == W_DONE || st == W_QUIT)
            return st;
        if (st == W_MAY_TAKE && mono_now() >= take_at) {
            if (take(p, i))
                return 1;
            lost = 1;
            continue;
        }
        if (polls < SPIN_POLLS) {
            cpu_relax();
            continue;
        }
        __atomic_store_n(waits, 1, __ATOMIC_SEQ_CST);
        const uint32_t b = __atomic_load_n(bell, __ATOMIC_SEQ_CST);
        double again = 0.0;
        const double left = st == W_MAY_TAKE ? take_at - mono_now() : 0.0;
        if (state(p, i, lost, &again) == st && !(st == W_MAY_TAKE && left <= 0))
            bell_wait(bell, b, left);
        __atomic_store_n(waits, 0, __ATOMIC_SEQ_CST);
    }
}

/* The tick thread before its tick i: done once tick i-1 has latched; it may take tick
 * i-1's second stage L_TAKE_NS after the hand-over, once posted, unclaimed so far as it
 * knows (lost: the helper claimed it and latches at once) and tick i-2's ended. */
static int stage2_state(struct stages *p, int64_t i, int lost, double *take_at)
{
    if (reached(&p->latched, (uint32_t)i))
        return W_DONE;
    if (p->loop[L_TAKE_NS] < 0 || lost || !reached(&p->posted, (uint32_t)i) ||
        !reached(&p->done, (uint32_t)(i - 1)))
        return W_WAIT;
    *take_at = (double)(__atomic_load_n(&p->posted_ns, __ATOMIC_SEQ_CST) + p->loop[L_TAKE_NS]) *
               1e-9;
    return W_MAY_TAKE;
}

static int take_stage2(struct stages *p, int64_t i)
{
    if (!claim(&p->claimed, i - 1))
        return 0;
    stage2_tick(p, i - 1, STAGE2_TAKEN);
    return 1;
}

/* The tick thread, before its tick i (i >= 1 in this call), waits until tick i-1 has
 * latched, as await_count. A helper whose wake-up is late (its CPU held by a kernel
 * thread or another process: DAMON's kdamond held one of this VM's two vCPUs for 1-3 ms
 * every 0.5 s, 2026-12-03) would hold the pipeline for as long. So once L_TAKE_NS has
 * passed since tick i-1 was handed over, if the helper has not begun its second stage and
 * none is running, the tick thread claims and runs it itself: a second stage of about
 * 0.5 ms at 150k, in the time the tick thread would wait anyway, instead of the helper's
 * whole delay. Returns 1 if it did. */
static int await_or_take(struct stages *p, int64_t i)
{
    return wait_or_take(p, i, stage2_state, take_stage2, &p->mbell, &p->main_waits) == 1;
}

/* Tick i's deadline (CLOCK_MONOTONIC s): each tick of a call advances the grid by one,
 * whichever thread runs it. */
static double deadline_of(const struct stages *p, int64_t i)
{
    return p->times[T_T0] + (double)(p->k0 + i - p->loop[L_K0]) * p->times[T_PERIOD];
}

/* Whether an input of v was posted since the last tick read the mailboxes. */
static int input_posted(struct stages *p)
{
    return seq_sum(p->v, 0) != __atomic_load_n(&p->seq_applied, __ATOMIC_SEQ_CST);
}

/* The longest sleep (s) between two looks at L_STOP in a run's wait for a deadline: at a
 * slow realtime factor (a period of seconds, up to MAX_WAIT) a command or a stop asked for
 * meanwhile ends the run within this, not a period later. */
#define STOP_POLL 0.05

/* Sleep until the time until (mono_now's line) unless L_STOP is set first; 1 if it is. */
static int sleep_or_stop(const int64_t *loop, double until)
{
    for (;;) {
        if (__atomic_load_n(&loop[L_STOP], __ATOMIC_ACQUIRE))
            return 1;
        const double now = mono_now();
        if (until - now <= STOP_POLL)
            return 0;
        sleep_until_mono(now + STOP_POLL, 0.0);
    }
}

/* The tick thread's wait for tick i, due at deadline: sleep_until_mono(deadline, spin),
 * or with L_EARLY, until an input is posted, if that is sooner, though never before the
 * previous tick's deadline: the tick that applies a new value then starts as it arrives
 * instead of up to a period later, and the simulation runs at most one tick ahead of the
 * grid. A tick with no new input waits for its deadline as before, so the grid (and the
 * real-time factor) is unchanged. Returns 1 if the tick starts before its deadline, -1 if
 * a stop was asked for (L_STOP) during the wait: it is looked at every STOP_POLL s. */
static int wait_for_tick(struct stages *p, double deadline, double spin)
{
    const int64_t *loop = p->loop;
#ifdef __linux__
    const int early = loop[L_EARLY] != 0;
#else
    const int early = 0; /* no futex to sleep on: every tick waits for its deadline */
#endif
    if (!early) {
        if (sleep_or_stop(loop, deadline - spin))
            return -1;
        sleep_until_mono(deadline, spin);
        return 0;
    }
    const double earliest = deadline - p->times[T_PERIOD];
    for (;;) {
        if (__atomic_load_n(&loop[L_STOP], __ATOMIC_ACQUIRE))
            return -1;
        const uint32_t b = __atomic_load_n(&input_bell, __ATOMIC_SEQ_CST);
        const int posted = input_posted(p);
        double now = mono_now();
        if (posted && now >= earliest)
            return now < deadline;
        if (now >= deadline - spin) {
            /* The spin: an input may still start the tick early. */
            while ((now = mono_now()) < deadline) {
                if (now >= earliest && input_posted(p))
                    return 1;
                cpu_relax();
            }
            return 0;
        }
        double until = deadline - spin;
        if (until > now + STOP_POLL)
            until = now + STOP_POLL;
        if (posted) { /* posted before the earliest start: a timer is all that is left */
            sleep_until_mono(earliest < until ? earliest : until, 0.0);
            continue;
        }
#ifdef __linux__ /* else never reached (early is 0) */
        const struct timespec ts = mono_timespec(until);
        /* Announced first, then the bell compared by the kernel: a post between the two
         * either changed the bell (the wait returns at once) or saw the sleeper and wakes
         * it. FUTEX_WAIT_BITSET's timeout is absolute, on CLOCK_MONOTONIC. */
        __atomic_add_fetch(&input_sleepers, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, &input_bell, FUTEX_WAIT_BITSET_PRIVATE, b, &ts, NULL,
                FUTEX_BITSET_MATCH_ANY);
        __atomic_sub_fetch(&input_sleepers, 1, __ATOMIC_SEQ_CST);
#else
        (void)b;
#endif
    }
}

/* The helper takes tick i's first stage, if the tick thread has not claimed it, as the
 * catch-up tick the tick thread would run once it ran: flagged late and counted in the
 * burst, so only under the catch-up policy and below max_catchup, and never once a stop
 * is asked for or with the ring full (the tick thread then ends the call). Returns 1 if it
 * did. */
static int take_stage1(struct stages *p, int64_t i)
{
    int64_t *loop = p->loop;
    if (__atomic_load_n(&loop[L_STOP], __ATOMIC_ACQUIRE) ||
        p->head0 + i - __atomic_load_n(&loop[L_TAIL], __ATOMIC_ACQUIRE) >= loop[L_CAPACITY] ||
        !may_catch_up(loop) || !claim(&p->started, i))
        return 0;
    /* Claimed: the tick thread changes neither the burst nor the grid until tick i is
     * posted, and then only after its own claim of tick i+1. */
    set_burst(loop, burst_now(loop) + 1);
    stage1_tick(p, i, p->k0 + i, deadline_of(p, i), 1);
    post_stage1(p, i);
    __atomic_add_fetch(&loop[L_STARTS_TAKEN], 1, __ATOMIC_RELAXED);
    return 1;
}

/* The helper before tick i's second stage: done once tick i is posted. It may take tick
 * i's first stage under catch-up with room in the burst (else no timer is armed for it),
 * unclaimed so far as it knows, and tick i-1 latched: L_TAKE_NS after the deadline or,
 * for a tick already late, after tick i-1 latched (the tick thread, woken by that latch,
 * begins a late tick at once). */
static int stage1_state(struct stages *p, int64_t i, int lost, double *take_at)
{
    if (reached(&p->posted, (uint32_t)(i + 1)))
        return W_DONE;
    if (__atomic_load_n(&p->quit, __ATOMIC_SEQ_CST))
        return W_QUIT;
    const int64_t *loop = p->loop;
    if (loop[L_TAKE_NS] < 0 || lost || !may_catch_up(loop) ||
        reached(&p->started, (uint32_t)(i + 1)) || !reached(&p->latched, (uint32_t)i))
        return W_WAIT;
    const double deadline = deadline_of(p, i);
    const double latched_at = (double)__atomic_load_n(&p->latched_ns, __ATOMIC_SEQ_CST) * 1e-9;
    *take_at = (deadline > latched_at ? deadline : latched_at) + (double)loop[L_TAKE_NS] * 1e-9;
    return W_MAY_TAKE;
}

/* The helper, before tick i's second stage, waits until the tick is posted, as
 * await_count. A tick thread whose wake-up for the deadline is late (its CPU held as
 * await_or_take's helper's can be; kdamond's 1.3-2.9 ms waits fell on the tick thread's
 * CPU too, while the helper's was idle) would start the tick as late. So once L_TAKE_NS
 * has passed since tick i's deadline, if the tick thread has not begun it, the helper
 * claims and runs its first stage (take_stage1), and then its second as usual. Rung by a
 * post, a latch or the end of a second stage the tick thread took, or quit. Returns 1
 * once tick i is posted, 0 if the call ends first. */
static int await_post_or_take(struct stages *p, int64_t i)
{
    return wait_or_take(p, i, stage1_state, take_stage1, &p->bell, &p->helper_waits) != W_QUIT;
}

static void *stage2_thread(void *arg)
{
    struct stages *p = arg;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "spikestream-s2"); /* as perf and top show it */
#endif
    for (int64_t i = 0;; i++) {
        if (!await_post_or_take(p, i))
            return NULL; /* quit, with every posted tick done */
        if (p->loop[L_HELPER_LAG_NS] > 0)
            sleep_until_mono(mono_now() + (double)p->loop[L_HELPER_LAG_NS] * 1e-9, 0.0);
        if (!claim(&p->claimed, i))
            continue; /* the tick thread ran it (await_or_take) */
        /* ... and may still run the tick before. */
        await_count(&p->done, (uint32_t)i, &p->bell, &p->helper_waits, NULL);
        stage2_tick(p, i, STAGE2_HELPER);
    }
}

/* Start the helper thread, with every signal blocked in it (Python handles signals on
 * its main thread). Returns 0, or an error number: the call then runs both stages on the
 * tick thread. */
static int start_stage2(struct stages *p, pthread_t *thread)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(thread, NULL, stage2_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

/* Pin the tick thread to the CPU it runs on and the helper to the others it may use, for
 * one run: each stage's arrays then stay in one core's caches instead of following its
 * thread from core to core, and the two threads never queue for the same CPU. *old
 * receives the tick thread's mask, restored when the run returns. Returns 1 if pinned
 * (not where the thread may use one CPU only, or the kernel refuses).
 *
 * Measured on a 2-vCPU VM (2026-12-02): paced in one process without the broker
 * (bench/tickthreads.py), pinning won 5 of 8 pairs at 100k-150k. Served, with the
 * I/O thread and the broker needing a CPU too, a 150k chain did worse pinned (5.76 and
 * 18.41 % against 4.52 and 3.64 %): so serve pins only when asked (--pin-tick-threads). */
static int pin_stages(pthread_t helper, cpu_set_t *old)
{
#ifdef __linux__
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof *old, old) != 0 ||
        CPU_COUNT(old) < 2 || !CPU_ISSET(cpu, old))
        return 0;
    cpu_set_t mine, theirs = *old;
    CPU_ZERO(&mine);
    CPU_SET(cpu, &mine);
    CPU_CLR(cpu, &theirs);
    if (sched_setaffinity(0, sizeof mine, &mine) != 0)
        return 0;
    if (pthread_setaffinity_np(helper, sizeof theirs, &theirs) != 0) {
        sched_setaffinity(0, sizeof *old, old);
        return 0;
    }
    return 1;
#else
    (void)helper;
    (void)old;
    return 0;
#endif
}
