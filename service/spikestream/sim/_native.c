/* spikestream.sim._native: the fused program interpreter in C.
 *
 * What spikestream/sim/jit.py's run_program does, as a CPython extension that loads in
 * about a millisecond: numba's import and the loading of cached kernels cost about half
 * a second at every start (issue 13), which is more than a short offline run steps for.
 * Results are bit for bit those of the numba kernels (tests/sim/test_native.py).
 *
 * run_program takes integers only: the data addresses of the program, the address
 * table, the constants and the spike counts, which the Python side (sim/program.py)
 * takes from arrays it allocated at build time and keeps alive. check_program checks a
 * program against its table once, when it is built (opcodes, slots, shapes, the rows of
 * fed and recorded blocks), so a malformed program raises ValueError instead of writing
 * out of bounds, and no tick pays for the check. The ticks run with the GIL released.
 *
 * tick() is the live service's whole tick in one call without the GIL: wait for the
 * deadline (sleep, then spin), take each input's latest value from its mailbox, run one
 * tick of the program. The I/O thread fills the mailboxes with post_input() under a
 * sequence lock, so the tick thread never waits for the GIL, for a lock or for the I/O
 * thread: a thread holding the GIL when a deadline comes no longer delays the tick.
 *
 * One translation unit; each part is included once where its section belongs:
 * _native_program.h (the interpreter, per precision; its weights in _native_weights.h),
 * _native_check.h (program checks, run_program), _native_inputs.h (clock, deadline wait,
 * mailboxes, tick), _native_record.h (tick records), _native_pacing.h (a run's layout,
 * the spin's adaptation), _native_stages.h (two stages on two threads), _native_loop.h
 * (run_ticks, the ring) and _native_streams.h (frames from the ring's rows).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__FAST_MATH__)
#error "spikestream.sim._native must be bit for bit numba's kernels: build without -ffast-math"
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

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
#define OP_ENCODE_H 11
#define OP_EVENTS_H 12
#define OP_DECODED_H 13
#define OP_LOWPASS_DECODED_H 14
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

/* Event-driven kernels add the rows of the neurons that spiked: rows of a matrix too
 * big for this VM's caches (a 100k chain's decoders are 6.4 MB), at indices the hardware
 * prefetchers cannot guess, each a miss to DRAM. Asking for the row PREFETCH_AHEAD
 * spikers ahead keeps several misses in flight instead of one. The row's first and last
 * bytes are asked for (a short row may straddle two cache lines; a long one is streamed
 * by the hardware prefetcher once it is entered). Indices outside the matrix are not
 * prefetched: the kernels skip them. */
#define PREFETCH_AHEAD 8
#define PREFETCH_ROW(weights, n_pre, n_post, spikers, q, count)                                \
    do {                                                                                     \
        if ((q) < (count) && (n_post) > 0 && (uint64_t)(spikers)[q] < (uint64_t)(n_pre)) {   \
            const char *p_ = (const char *)((weights) + (spikers)[q] * (n_post));            \
            __builtin_prefetch(p_);                                                          \
            __builtin_prefetch(p_ + (n_post) * (int64_t)sizeof *(weights) - 1);              \
        }                                                                                    \
    } while (0)

/* Half-precision weights (sim/weights.py): float16 bits widened to float32, exactly.
 * The kernels widen a chunk of at most CHUNK elements at a time into a buffer in L1. */
#define CHUNK 256

/* One float16 (as its bits) as a float32: exact for every value, subnormals, infinities
 * and NaNs included. */
static float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else {
        /* Zero or subnormal: mantissa * 2**-24, a normal float32 (or zero), exactly. */
        const float magnitude = (float)mantissa * 0x1p-24f;
        memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

static void widen_portable(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = half_to_float(src[i]);
}

/* GCC only: older clang rejects __builtin_cpu_supports("f16c"); clang builds use the
 * portable loops. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAND_SIMD 1
#include <immintrin.h>
/* The same with F16C, eight at a time (vcvtph2ps is exact as well). */
__attribute__((target("avx,f16c"))) static void widen_f16c(const uint16_t *src, float *dst,
                                                           int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = half_to_float(src[i]);
}

/* The encoding of a float32 state from half-precision encoders, the biggest read of a
 * decoded chain's tick (encode_h_f32 below, in registers): the eight rows' chunks are
 * loaded side by side, as the float32 kernel loads them, instead of widened one row after
 * another, which left this VM's prefetchers a single stream at a time. The sums are
 * encode_f32's, operation for operation. */
__attribute__((target("avx,f16c"))) static void encode8_f16c(const uint16_t *enc_t, float scale,
                                                             int64_t d, int64_t n,
                                                             const float *y, float *current)
{
    const __m256 s = _mm256_set1_ps(scale);
#define W(row) _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((row) + i))), s)
#define T(row, yv) _mm256_mul_ps(W(row), yv)
    for (int64_t j = 0; j + 8 <= d; j += 8) {
        const __m256 y0 = _mm256_set1_ps(y[j]), y1 = _mm256_set1_ps(y[j + 1]);
        const __m256 y2 = _mm256_set1_ps(y[j + 2]), y3 = _mm256_set1_ps(y[j + 3]);
        const __m256 y4 = _mm256_set1_ps(y[j + 4]), y5 = _mm256_set1_ps(y[j + 5]);
        const __m256 y6 = _mm256_set1_ps(y[j + 6]), y7 = _mm256_set1_ps(y[j + 7]);
        const uint16_t *r0 = enc_t + j * n, *r1 = r0 + n, *r2 = r1 + n, *r3 = r2 + n;
        const uint16_t *r4 = r3 + n, *r5 = r4 + n, *r6 = r5 + n, *r7 = r6 + n;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 lo = _mm256_add_ps(_mm256_add_ps(T(r0, y0), T(r1, y1)),
                                            _mm256_add_ps(T(r2, y2), T(r3, y3)));
            const __m256 hi = _mm256_add_ps(_mm256_add_ps(T(r4, y4), T(r5, y5)),
                                            _mm256_add_ps(T(r6, y6), T(r7, y7)));
            _mm256_storeu_ps(current + i,
                             _mm256_add_ps(_mm256_loadu_ps(current + i), _mm256_add_ps(lo, hi)));
        }
        for (; i < n; i++) {
#define H(row, yj) ((half_to_float((row)[i]) * scale) * (yj))
            current[i] += ((H(r0, y[j]) + H(r1, y[j + 1])) + (H(r2, y[j + 2]) + H(r3, y[j + 3]))) +
                          ((H(r4, y[j + 4]) + H(r5, y[j + 5])) + (H(r6, y[j + 6]) + H(r7, y[j + 7])));
#undef H
        }
    }
#undef T
#undef W
}

/* out += weights[spikers[q]] for q < count with half-precision weights and a float32 state
 * (accumulate_rows_h_f32, in registers). The decoders' rows are short (d = 16 in a
 * decoded chain): widening each through widen_halves cost a call, a store and a reload
 * per row, a third of the tick's time on a Zen 1 VM. Here each block of up to 32 columns
 * stays in four registers while every spiker's row is added to it, in spiker order, so
 * each element gets the same additions in the same order as the scalar loop. Indices
 * outside the n_pre rows are skipped, as there. */
__attribute__((target("avx,f16c"))) static void accum_rows_f16c(const uint16_t *weights,
                                                                float scale, int64_t n_pre,
                                                                int64_t n_post,
                                                                const int64_t *spikers,
                                                                int64_t count, float *out)
{
    const __m256 s = _mm256_set1_ps(scale);
#define ROW8(p) _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p))), s)
    int64_t j0 = 0;
    for (; j0 + 32 <= n_post; j0 += 32) {
        __m256 a0 = _mm256_loadu_ps(out + j0), a1 = _mm256_loadu_ps(out + j0 + 8);
        __m256 a2 = _mm256_loadu_ps(out + j0 + 16), a3 = _mm256_loadu_ps(out + j0 + 24);
        for (int64_t q = 0; q < count; q++) {
            PREFETCH_ROW(weights, n_pre, n_post, spikers, q + PREFETCH_AHEAD, count);
            if ((uint64_t)spikers[q] >= (uint64_t)n_pre)
                continue;
            const uint16_t *row = weights + spikers[q] * n_post + j0;
            a0 = _mm256_add_ps(a0, ROW8(row));
            a1 = _mm256_add_ps(a1, ROW8(row + 8));
            a2 = _mm256_add_ps(a2, ROW8(row + 16));
            a3 = _mm256_add_ps(a3, ROW8(row + 24));
        }
        _mm256_storeu_ps(out + j0, a0);
        _mm256_storeu_ps(out + j0 + 8, a1);
        _mm256_storeu_ps(out + j0 + 16, a2);
        _mm256_storeu_ps(out + j0 + 24, a3);
    }
    for (; j0 + 8 <= n_post; j0 += 8) {
        __m256 a = _mm256_loadu_ps(out + j0);
        for (int64_t q = 0; q < count; q++) {
            PREFETCH_ROW(weights, n_pre, n_post, spikers, q + PREFETCH_AHEAD, count);
            if ((uint64_t)spikers[q] >= (uint64_t)n_pre)
                continue;
            a = _mm256_add_ps(a, ROW8(weights + spikers[q] * n_post + j0));
        }
        _mm256_storeu_ps(out + j0, a);
    }
#undef ROW8
    if (j0 == n_post)
        return;
    for (int64_t q = 0; q < count; q++) {
        if ((uint64_t)spikers[q] >= (uint64_t)n_pre)
            continue;
        const uint16_t *row = weights + spikers[q] * n_post;
        for (int64_t j = j0; j < n_post; j++)
            out[j] += half_to_float(row[j]) * scale;
    }
}

/* The LIF step's pass 2 for a float32 state, eight neurons at a time: the indices of the
 * neurons leaving their refractory period (0 < ref < dt) and of those that spiked, each
 * list in index order, appended with one masked permutation and one store per four
 * neurons instead of two scalar stores per neuron. pack_lanes[m] moves the int64 lanes
 * whose bit is set in the 4-bit mask m to the front, in order. Like the scalar loop it
 * replaces, it writes past each list's count (at most three entries, inside the arrays,
 * which hold n) what nothing reads. Returns how many neurons it did (a multiple of 8). */
static __m256i pack_lanes[16];
static int64_t pack_count[16];

__attribute__((target("avx2"))) static int64_t compact8_avx2(const float *ref,
                                                             const uint8_t *spiked, int64_t n,
                                                             float dt, int64_t *leaving,
                                                             int64_t *spikers,
                                                             int64_t *n_leaving,
                                                             int64_t *n_spikes)
{
    const __m256 zero = _mm256_setzero_ps(), d = _mm256_set1_ps(dt);
    const __m256i four = _mm256_set1_epi64x(4), eight = _mm256_set1_epi64x(8);
    __m256i lo = _mm256_setr_epi64x(0, 1, 2, 3);
    int64_t nl = *n_leaving, ns = *n_spikes, i = 0;
    for (; i + 8 <= n; i += 8) {
        /* (r > 0) & (r < dt), false for NaN, as the scalar comparisons. */
        const __m256 r = _mm256_loadu_ps(ref + i);
        const int lv = _mm256_movemask_ps(
            _mm256_and_ps(_mm256_cmp_ps(r, zero, _CMP_GT_OQ), _mm256_cmp_ps(r, d, _CMP_LT_OQ)));
        const __m128i flags = _mm_loadl_epi64((const __m128i *)(spiked + i));
        const int sp = _mm_movemask_epi8(_mm_cmpgt_epi8(flags, _mm_setzero_si128())) & 0xff;
        const __m256i hi = _mm256_add_epi64(lo, four);
#define PACK(out, count, v, m)                                                                 \
    do {                                                                                     \
        _mm256_storeu_si256((__m256i *)((out) + (count)),                                    \
                            _mm256_permutevar8x32_epi32((v), pack_lanes[m]));                \
        (count) += pack_count[m];                                                            \
    } while (0)
        PACK(leaving, nl, lo, lv & 15);
        PACK(leaving, nl, hi, lv >> 4);
        PACK(spikers, ns, lo, sp & 15);
        PACK(spikers, ns, hi, sp >> 4);
#undef PACK
        lo = _mm256_add_epi64(lo, eight);
    }
    *n_leaving = nl;
    *n_spikes = ns;
    return i;
}

static void fill_pack_lanes(void)
{
    for (int m = 0; m < 16; m++) {
        int32_t lanes[8] = {0};
        int j = 0;
        for (int k = 0; k < 4; k++)
            if (m >> k & 1) {
                lanes[2 * j] = 2 * k;
                lanes[2 * j + 1] = 2 * k + 1;
                j++;
            }
        memcpy(&pack_lanes[m], lanes, sizeof lanes);
        pack_count[m] = j;
    }
}
#endif

/* Chosen at import (choose_simd): F16C and AVX2 where the CPU has them. */
static void (*widen_halves)(const uint16_t *src, float *dst, int64_t n) = widen_portable;
/* The eight-row sweeps of encode_h_f32 (every full group of eight rows), or NULL. */
static void (*encode8_halves)(const uint16_t *enc_t, float scale, int64_t d, int64_t n,
                              const float *y, float *current) = NULL;
/* accumulate_rows_h_f32 whole, or NULL. */
static void (*accum_halves)(const uint16_t *weights, float scale, int64_t n_pre, int64_t n_post,
                            const int64_t *spikers, int64_t count, float *out) = NULL;
/* Pass 2 of lif_step_f32 over whole blocks of eight neurons, or NULL. */
static int64_t (*compact8_f32)(const float *ref, const uint8_t *spiked, int64_t n, float dt,
                               int64_t *leaving, int64_t *spikers, int64_t *n_leaving,
                               int64_t *n_spikes) = NULL;

#define ENCODE8_HALF(...) 0
#define ACCUM_HALF(...) 0
#define COMPACT8(...) 0
#define REAL double
#define NAME(x) x##_f64
#define EXPM1 expm1
#define LOG1P log1p
#include "_native_program.h"
#undef REAL
#undef NAME
#undef EXPM1
#undef LOG1P

#undef COMPACT8
#define COMPACT8(...) (compact8_f32 != NULL ? compact8_f32(__VA_ARGS__) : 0)
#undef ENCODE8_HALF
#define ENCODE8_HALF(e, s, d, n, y, c)                                                          \
    (encode8_halves != NULL && (encode8_halves((e), (s), (d), (n), (y), (c)), 1))
#undef ACCUM_HALF
#define ACCUM_HALF(w, s, n_pre, n_post, sp, count, out)                                        \
    (accum_halves != NULL && (accum_halves((w), (s), (n_pre), (n_post), (sp), (count), (out)), 1))
#define REAL float
#define NAME(x) x##_f32
#define EXPM1 expm1f
#define LOG1P log1pf
#include "_native_program.h"
#undef REAL
#undef NAME
#undef EXPM1
#undef LOG1P

#include "_native_check.h"

#include "_native_inputs.h"

/* ------------------------------------------------------------------ tick records */

#include "_native_record.h"

PyDoc_STRVAR(record_doc,
"record(kind, descriptor, a, b, c)\n--\n\n"
"Record one tick in a record of runtime/stats.py (see _native_record.h), as run_ticks\n"
"records each tick of a run. kind 0: a LatenessStats, sample a (seconds); 1: a\n"
"LatenessWindow, a tick that started at a with lateness b and interval c; 2: the pacer's\n"
"pace record, a tick that started at a, b seconds late. descriptor: the record's int64\n"
"descriptor address.");

static PyObject *py_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t kind, address;
    double a, b = 0.0, c = 0.0;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "record takes 5 arguments; got %zd", nargs);
        return NULL;
    }
    if (as_i64(args[0], &kind, "kind") < 0 || as_i64(args[1], &address, "descriptor") < 0 ||
        as_f64(args[2], &a, "a") < 0 || as_f64(args[3], &b, "b") < 0 ||
        as_f64(args[4], &c, "c") < 0)
        return NULL;
    const int64_t *d = (const int64_t *)(intptr_t)address;
    if (kind == 0 && stats_ok(d))
        record_stats(d, a);
    else if (kind == 1 && window_ok(d))
        record_window(d, a, b, c);
    else if (kind == 2 && pace_ok(d))
        record_pace(d, a, b);
    else {
        PyErr_Format(PyExc_ValueError, "record: kind %lld with a malformed descriptor; "
                     "expected kind 0, 1 or 2 and a descriptor laid out as "
                     "_native_record.h's", (long long)kind);
        return NULL;
    }
    Py_RETURN_NONE;
}

#include "_native_pacing.h"

#include "_native_stages.h"

#include "_native_loop.h"

/* ------------------------------------------------------------------ probe streams */

#include "_native_streams.h"

PyDoc_STRVAR(adapt_spin_doc,
"adapt_spin(loop, times)\n--\n\n"
"Count one tick of run_ticks' spin adaptation, for a tick loop of the caller's own (the\n"
"benchmark's empty floor tick waits as the service does): loop and times are the\n"
"addresses of arrays laid out as run_ticks' (only the adaptation's columns are used).\n"
"Returns the spin the next tick waits with.");

static PyObject *py_adapt_spin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t address, t_address;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "adapt_spin takes 2 arguments; got %zd", nargs);
        return NULL;
    }
    if (as_i64(args[0], &address, "loop") < 0 || as_i64(args[1], &t_address, "times") < 0)
        return NULL;
    int64_t *loop = (int64_t *)(intptr_t)address;
    const double *times = (const double *)(intptr_t)t_address;
    if (loop == NULL || times == NULL || !adaptation_ok(loop)) {
        PyErr_SetString(PyExc_ValueError, "adapt_spin: expected arrays, and a descriptor, adapt "
                                          "ticks, calm and hot windows >= 1 where a schedstat "
                                          "is given");
        return NULL;
    }
    adapt_spin(loop, times);
    return PyFloat_FromDouble(spin_now(loop, times));
}

/* Choose the hand-vectorised kernels (F16C widening and encoding of half-precision
 * weights, AVX2 compaction in the LIF step; where the CPU has both) or the portable
 * loops; the import chooses the vectorised ones where it can. */
static int choose_simd(int wanted)
{
    widen_halves = widen_portable;
    encode8_halves = NULL;
    accum_halves = NULL;
    compact8_f32 = NULL;
#ifdef HAND_SIMD
    __builtin_cpu_init();
    if (wanted && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2")) {
        fill_pack_lanes();
        widen_halves = widen_f16c;
        encode8_halves = encode8_f16c;
        accum_halves = accum_rows_f16c;
        compact8_f32 = compact8_avx2;
        return 1;
    }
#else
    (void)wanted;
#endif
    return 0;
}

PyDoc_STRVAR(use_simd_doc,
"use_simd(wanted) -> bool\n"
"--\n\n"
"Use the hand-vectorised kernels (F16C for half-precision weights, AVX2 for the LIF\n"
"step's compaction) when wanted is true and the CPU has AVX2 and F16C, else portable C;\n"
"return whether they are used. Both give the same bits (the test suite runs both). Not\n"
"for use while a program runs.");

static PyObject *py_use_simd(PyObject *self, PyObject *arg)
{
    (void)self;
    int wanted = PyObject_IsTrue(arg);
    if (wanted < 0)
        return NULL;
    return PyBool_FromLong(choose_simd(wanted));
}

static PyMethodDef methods[] = {
    {"use_simd", py_use_simd, METH_O, use_simd_doc},
    {"check_program", (PyCFunction)(void (*)(void))py_check_program, METH_FASTCALL,
     check_program_doc},
    {"run_program", (PyCFunction)(void (*)(void))run_program, METH_FASTCALL, run_program_doc},
    {"tick", (PyCFunction)(void (*)(void))py_tick, METH_FASTCALL, tick_doc},
    {"run_ticks", (PyCFunction)(void (*)(void))py_run_ticks, METH_FASTCALL, run_ticks_doc},
    {"ring_take", py_ring_take, METH_O, ring_take_doc},
    {"ring_look", (PyCFunction)(void (*)(void))py_ring_look, METH_FASTCALL, ring_look_doc},
    {"ring_done", (PyCFunction)(void (*)(void))py_ring_done, METH_FASTCALL, ring_done_doc},
    {"adapt_spin", (PyCFunction)(void (*)(void))py_adapt_spin, METH_FASTCALL, adapt_spin_doc},
    {"post_input", (PyCFunction)(void (*)(void))py_post_input, METH_FASTCALL, post_input_doc},
    {"sleep_until", (PyCFunction)(void (*)(void))py_sleep_until, METH_FASTCALL, sleep_until_doc},
    {"now", py_now, METH_NOARGS, now_doc},
    {"record", (PyCFunction)(void (*)(void))py_record, METH_FASTCALL, record_doc},
    {"stream_record", (PyCFunction)(void (*)(void))py_stream_record, METH_FASTCALL,
     stream_record_doc},
    {"stream_flush", (PyCFunction)(void (*)(void))py_stream_flush, METH_FASTCALL,
     stream_flush_doc},
    {"stream_take", py_stream_take, METH_O, stream_take_doc},
    {"stream_take_legacy", py_stream_take_legacy, METH_O, stream_take_legacy_doc},
    {"stream_release", (PyCFunction)(void (*)(void))py_stream_release, METH_FASTCALL,
     stream_release_doc},
    {"stream_count", (PyCFunction)(void (*)(void))py_stream_count, METH_FASTCALL,
     stream_count_doc},
    {"streams_record", (PyCFunction)(void (*)(void))py_streams_record, METH_FASTCALL,
     streams_record_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The fused program interpreter in C (see spikestream.sim.native).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    choose_simd(1);
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "PROGRAM_COLUMNS", PROGRAM_COLUMNS) < 0 ||
        PyModule_AddIntConstant(m, "LOOP_COLUMNS", L_COLUMNS) < 0 ||
        PyModule_AddIntConstant(m, "TIME_COLUMNS", T_COLUMNS) < 0 ||
        PyModule_AddIntConstant(m, "ROW_HEADER_BYTES", 8 * R_META) < 0 ||
        PyModule_AddIntConstant(m, "MAX_WAIT", (long)MAX_WAIT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
