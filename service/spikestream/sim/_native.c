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
 * 1 a new value, 2 went stale, as runtime/slots.py's NEW_VALUE and WENT_STALE);
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
            if (!st[ST_STALE]) {                                                           \
                const double *dflt = (const double *)(intptr_t)row[IN_DEFAULT];            \
                st[ST_STALE] = 1;                                                          \
                st[ST_FLAG] = 2;                                                           \
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
"times: float64 (T_COLUMNS,) addresses (see _native.c). Returns 0 (stop), 1 (overrun) or 2\n"
"(ring full); loop[L_TICKS] says how many ticks ran.");

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

/* ------------------------------------------------------------------ probe streams */

#include "_native_streams.h"

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
