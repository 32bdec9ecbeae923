/* One precision of the program interpreter: included twice by _native.c, with
 * REAL = double / float and NAME(x) = x##_f64 / x##_f32.
 *
 * Every function here computes what its namesake in spikestream/sim/jit.py computes,
 * element by element, in the same order of operations (the numba kernels are the
 * reference; tests/sim/test_native.py compares the two bit for bit). The file is
 * compiled with -ffp-contract=off, so no multiply-add is fused and every operation
 * rounds as the numba code (LLVM without fast-math) rounds it.
 */

/* LIF step: lif_step_jit. Arrays of length n; returns the number of spikers, whose
 * indices are spikers[:count] afterwards. */
HOT static int64_t NAME(lif_step)(REAL *J, REAL *v, REAL *ref, uint8_t *spiked, REAL *s01,
                              const REAL *c, int64_t *leaving, int64_t *spikers, int64_t n)
{
    const REAL dt = c[C_DT], tau_rc = c[C_TAU_RC], tau_ref = c[C_TAU_REF];
    const REAL vmin = c[C_MIN_VOLTAGE], full = c[C_FULL], zero = c[C_ZERO], one = c[C_ONE];
    const REAL neg_tau_rc = c[C_NEG_TAU_RC];
    /* Pass 1, every neuron, branch-free so it vectorises. */
    for (int64_t i = 0; i < n; i++) {
        REAL r = ref[i] - dt;
        ref[i] = r;
        REAL vo = v[i];
        REAL f = r <= zero ? full : zero;
        REAL vi = vo - (J[i] - vo) * f;
        /* Neurons leaving their refractory period are decided in pass 3 only. */
        int spike = (vi > one) & !((r > zero) & (r < dt));
        spiked[i] = (uint8_t)spike;
        s01[i] = spike ? one : zero;
        v[i] = vi >= vmin ? vi : vmin;
    }
    /* Pass 2: branch-free compaction of the leaving neurons and the spikers, in index
     * order: whole blocks of eight by COMPACT8 (vectorised, float32 with AVX2; else none),
     * the rest here. */
    int64_t heads[2] = {0, 0};
    const int64_t done = COMPACT8(ref, spiked, n, dt, leaving, spikers, &heads[0], &heads[1]);
    /* Fresh locals, whose addresses never escape: the stores into leaving and spikers
     * below cannot change them, so they stay in registers. */
    int64_t n_leaving = heads[0], n_spikes = heads[1];
    for (int64_t i = done; i < n; i++) {
        REAL r = ref[i];
        leaving[n_leaving] = i;
        n_leaving += (r > zero) & (r < dt);
        spikers[n_spikes] = i;
        n_spikes += spiked[i];
    }
    /* Pass 3: the exact update of the neurons leaving their refractory period. */
    for (int64_t q = 0; q < n_leaving; q++) {
        int64_t i = leaving[q];
        REAL vo = v[i];
        REAL vi = vo - (J[i] - vo) * EXPM1((dt - ref[i]) / neg_tau_rc);
        if (vi > one) {
            spiked[i] = 1;
            s01[i] = one;
            spikers[n_spikes++] = i;
        } else if (vi < vmin) {
            vi = vmin;
        }
        v[i] = vi;
    }
    /* Pass 4: the spikers' refractory time from the exact spike time. */
    for (int64_t q = 0; q < n_spikes; q++) {
        int64_t i = spikers[q];
        ref[i] = LOG1P((one - v[i]) / (J[i] - one)) * tau_rc + dt + tau_ref;
        v[i] = zero;
    }
    return n_spikes;
}

/* The kernels that read weights, once for weights stored in the state dtype and once
 * for half-precision weights (spikestream/sim/weights.py). */
#define WEIGHT REAL
#define WROW REAL
#define WNAME(x) NAME(x)
#define WCHUNK INT64_MAX
#define WBUF(rows)
#define WIDEN(p, k, m) (p)
#define LOAD(w) (w)
#define ENCODE8(...) 0
#define ACCUM(...) 0
#include "_native_weights.h"
#define WEIGHT uint16_t
#define WROW float
#define WNAME(x) NAME(x##_h)
#define WCHUNK CHUNK
#define WBUF(rows) float buf[rows][CHUNK]
#define WIDEN(p, k, m) (widen_halves((p), buf[k], (m)), (const float *)buf[k])
#define LOAD(w) ((REAL)(w) * scale)
#define ENCODE8(...) ENCODE8_HALF(__VA_ARGS__)
#define ACCUM(...) ACCUM_HALF(__VA_ARGS__)
#include "_native_weights.h"

#define VEC(slot) ((REAL *)(intptr_t)table[(slot) * 3 + T_ADDRESS])
#define IDX(slot) ((int64_t *)(intptr_t)table[(slot) * 3 + T_ADDRESS])
#define FLAGS(slot) ((uint8_t *)(intptr_t)table[(slot) * 3 + T_ADDRESS])
#define ROWS_OF(slot) (table[(slot) * 3 + T_ROWS])
#define COLS_OF(slot) (table[(slot) * 3 + T_COLS])
/* A spike count read from counts, within [0, the spikers array's length]. */
#define CLAMP(count, n) ((count) < 0 ? 0 : (count) > (n) ? (n) : (count))
/* kernel(the matrix in table slot `slot`, scale, ...), stored in the state dtype, or in
 * half precision when `half` (an _H opcode). */
#define WCALL(half, kernel, slot, scale, ...)                                                  \
    do {                                                                                     \
        if (half)                                                                            \
            NAME(kernel##_h)((const uint16_t *)(intptr_t)table[(slot) * 3 + T_ADDRESS], scale, \
                             __VA_ARGS__);                                                   \
        else                                                                                 \
            NAME(kernel)(VEC(slot), scale, __VA_ARGS__);                                     \
    } while (0)

/* Ticks start .. stop-1 of a checked program: run_program in jit.py. */
HOT static void NAME(run_program)(const int64_t *program, int64_t n_ops, const int64_t *table,
                              const REAL *scalars, int64_t *counts, int64_t start, int64_t stop)
{
    for (int64_t k = start; k < stop; k++) {
        for (int64_t r = 0; r < n_ops; r++) {
            const int64_t *op = program + r * PROGRAM_COLUMNS;
            switch (op[0]) {
            case OP_LIF:
                counts[op[9]] = NAME(lif_step)(VEC(op[1]), VEC(op[2]), VEC(op[3]), FLAGS(op[4]),
                                               VEC(op[5]), scalars + op[8] * 8, IDX(op[6]),
                                               IDX(op[7]), ROWS_OF(op[1]));
                break;
            case OP_COPY: {
                REAL *dst = VEC(op[1]);
                const REAL *src = VEC(op[2]);
                for (int64_t i = 0, n = ROWS_OF(op[1]); i < n; i++)
                    dst[i] = src[i];
                break;
            }
            case OP_ADD: {
                REAL *dst = VEC(op[1]);
                const REAL *src = VEC(op[2]);
                for (int64_t i = 0, n = ROWS_OF(op[1]); i < n; i++)
                    dst[i] += src[i];
                break;
            }
            case OP_EVENTS:
            case OP_EVENTS_H: {
                REAL *z = VEC(op[1]);
                const REAL *s = scalars + op[5] * 8;
                const REAL a = s[0]; /* read once: z may alias scalars for all C knows */
                for (int64_t i = 0, n = ROWS_OF(op[1]); i < n; i++)
                    z[i] *= a;
                int64_t count = CLAMP(counts[op[4]], ROWS_OF(op[3]));
                if (count)
                    WCALL(op[0] == OP_EVENTS_H, accumulate_rows, op[2], s[2], ROWS_OF(op[2]),
                          ROWS_OF(op[1]), IDX(op[3]), count, z);
                break;
            }
            case OP_DECODED:
            case OP_DECODED_H: {
                const REAL *s = scalars + op[7] * 8;
                const int half = op[0] == OP_DECODED_H;
                WCALL(half, decode_lowpass, op[3], s[2], IDX(op[1]),
                      CLAMP(counts[op[2]], ROWS_OF(op[1])), ROWS_OF(op[3]), COLS_OF(op[3]),
                      VEC(op[4]), s[0], s[1], VEC(op[8]));
                WCALL(half, encode, op[5], s[3], ROWS_OF(op[5]), COLS_OF(op[5]), VEC(op[4]),
                      VEC(op[6]));
                break;
            }
            case OP_FILTERED: {
                /* Branch-free: s01 is 0 or 1 (see run_program in jit.py). */
                REAL *y = VEC(op[1]);
                const REAL *u = VEC(op[2]);
                const REAL a = scalars[op[3] * 8], height = scalars[op[3] * 8 + 1];
                for (int64_t i = 0, n = ROWS_OF(op[1]); i < n; i++)
                    y[i] = y[i] * a + height * u[i];
                break;
            }
            case OP_LOWPASS_DECODED:
            case OP_LOWPASS_DECODED_H: {
                const REAL *s = scalars + op[6] * 8;
                WCALL(op[0] == OP_LOWPASS_DECODED_H, decode_lowpass, op[3], s[2], IDX(op[1]),
                      CLAMP(counts[op[2]], ROWS_OF(op[1])), ROWS_OF(op[3]), COLS_OF(op[3]),
                      VEC(op[4]), s[0], s[1], VEC(op[5]));
                break;
            }
            case OP_ENCODE:
            case OP_ENCODE_H: {
                /* Only the half-precision form has a constants row (its scale). */
                const int half = op[0] == OP_ENCODE_H;
                WCALL(half, encode_rows, op[2], half ? scalars[op[5] * 8] : 0, ROWS_OF(op[2]),
                      COLS_OF(op[2]), VEC(op[3]), VEC(op[1]), op[4] != 0);
                break;
            }
            case OP_FEED: {
                REAL *x = VEC(op[1]);
                const REAL *row = VEC(op[2]) + k * COLS_OF(op[2]);
                for (int64_t i = 0, n = ROWS_OF(op[1]); i < n; i++)
                    x[i] = row[i];
                break;
            }
            case OP_RECORD: {
                const REAL *src = VEC(op[2]);
                REAL *out = VEC(op[1]) + k * COLS_OF(op[1]);
                for (int64_t i = 0, n = ROWS_OF(op[2]); i < n; i++)
                    out[i] = src[i];
                break;
            }
            case OP_RECORD_BOOL: {
                const uint8_t *src = FLAGS(op[2]);
                uint8_t *out = FLAGS(op[1]) + k * COLS_OF(op[1]);
                for (int64_t i = 0, n = ROWS_OF(op[2]); i < n; i++)
                    out[i] = src[i];
                break;
            }
            }
        }
    }
}

#undef VEC
#undef IDX
#undef FLAGS
#undef ROWS_OF
#undef COLS_OF
#undef CLAMP
#undef WCALL
