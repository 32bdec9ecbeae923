/* The kernels that read a matrix of weights (encoders, decoders, connection weights):
 * included by _native_program.h once per weight storage, inside one precision, with
 *   WEIGHT      the stored element type: REAL, or uint16_t (float16 bits);
 *   WROW        the type a kernel reads elements as: REAL, or float;
 *   WNAME(x)    the kernel's name: NAME(x), or NAME(x##_h);
 *   WCHUNK      the elements read per pass over a row: CHUNK, or a whole row (INT64_MAX);
 *   WBUF(rows)  declares `buf`, room for `rows` chunks of CHUNK widened elements (or
 *               nothing);
 *   WIDEN(p, k, m)  the m stored elements at p as WROW: p itself, or widened into
 *               buf[k] (widen_halves) and that chunk;
 *   LOAD(w)     an element read through WIDEN as a REAL: (w), or ((REAL)(w) * scale);
 *   ENCODE8(...)  1 after running encode's groups of eight rows itself (encode8_halves,
 *               for half-precision weights and a float32 state where the CPU has F16C),
 *               else 0.
 *   ACCUM(...)  1 after running accumulate_rows itself (accum_halves, for half-precision
 *               weights and a float32 state where the CPU has F16C), else 0.
 *
 * A half-precision matrix was rounded at build time (spikestream/sim/weights.py) so that
 * half * scale is exactly the value the simulator's own matrix holds; widening a float16
 * and the product by a power of two are exact, so both storages compute the same sums,
 * in the same order, bit for bit. GCC does not vectorise loads of float16 without
 * AVX512-FP16, so half-precision rows are widened a chunk at a time (F16C where the CPU
 * has it) and the arithmetic runs, vectorised, over the widened chunk in L1.
 *
 * Every kernel takes the matrix and its scale first (the scale is unused where WEIGHT is
 * REAL). The file undefines its parameters at its end, for the next instantiation. */

/* out += weights[spikers[q]] for q < count: accumulate_rows_jit. An index outside the
 * n_pre rows (which only a spikers array that no LIF step wrote could hold) is skipped:
 * the caller's count is not trusted to cover written entries only. */
HOT static void WNAME(accumulate_rows)(const WEIGHT *weights, REAL scale, int64_t n_pre,
                                       int64_t n_post, const int64_t *spikers, int64_t count,
                                       REAL *out)
{
    (void)scale;
    if (ACCUM(weights, scale, n_pre, n_post, spikers, count, out))
        return;
    WBUF(1);
    for (int64_t q = 0; q < count; q++) {
        PREFETCH_ROW(weights, n_pre, n_post, spikers, q + PREFETCH_AHEAD, count);
        if ((uint64_t)spikers[q] >= (uint64_t)n_pre)
            continue;
        const WEIGHT *row = weights + spikers[q] * n_post;
        for (int64_t j0 = 0; j0 < n_post; j0 += WCHUNK) {
            const int64_t m = n_post - j0 < WCHUNK ? n_post - j0 : WCHUNK;
            const WROW *r = WIDEN(row + j0, 0, m);
            REAL *o = out + j0;
            for (int64_t j = 0; j < m; j++)
                o[j] += LOAD(r[j]);
        }
    }
}

/* current = encoders_t.T @ y, eight rows per sweep: encode_jit. */
HOT static void WNAME(encode)(const WEIGHT *enc_t, REAL scale, int64_t d, int64_t n,
                              const REAL *y, REAL *current)
{
    (void)scale;
    WBUF(8);
    for (int64_t i = 0; i < n; i++)
        current[i] = 0;
    int64_t j = 0;
    if (ENCODE8(enc_t, scale, d, n, y, current))
        j = d - d % 8; /* the full groups of eight rows are done */
    for (; j + 8 <= d; j += 8) {
        const REAL y0 = y[j], y1 = y[j + 1], y2 = y[j + 2], y3 = y[j + 3];
        const REAL y4 = y[j + 4], y5 = y[j + 5], y6 = y[j + 6], y7 = y[j + 7];
        const WEIGHT *row = enc_t + j * n;
        for (int64_t i0 = 0; i0 < n; i0 += WCHUNK) {
            const int64_t m = n - i0 < WCHUNK ? n - i0 : WCHUNK;
            const WROW *r0 = WIDEN(row + i0, 0, m), *r1 = WIDEN(row + n + i0, 1, m);
            const WROW *r2 = WIDEN(row + 2 * n + i0, 2, m), *r3 = WIDEN(row + 3 * n + i0, 3, m);
            const WROW *r4 = WIDEN(row + 4 * n + i0, 4, m), *r5 = WIDEN(row + 5 * n + i0, 5, m);
            const WROW *r6 = WIDEN(row + 6 * n + i0, 6, m), *r7 = WIDEN(row + 7 * n + i0, 7, m);
            REAL *c = current + i0;
            for (int64_t i = 0; i < m; i++)
                c[i] += ((LOAD(r0[i]) * y0 + LOAD(r1[i]) * y1) +
                         (LOAD(r2[i]) * y2 + LOAD(r3[i]) * y3)) +
                        ((LOAD(r4[i]) * y4 + LOAD(r5[i]) * y5) +
                         (LOAD(r6[i]) * y6 + LOAD(r7[i]) * y7));
        }
    }
    for (; j < d; j++) {
        const REAL yj = y[j];
        for (int64_t i0 = 0; i0 < n; i0 += WCHUNK) {
            const int64_t m = n - i0 < WCHUNK ? n - i0 : WCHUNK;
            const WROW *r0 = WIDEN(enc_t + j * n + i0, 0, m);
            REAL *c = current + i0;
            for (int64_t i = 0; i < m; i++)
                c[i] += LOAD(r0[i]) * yj;
        }
    }
}

/* acc = decoders[spikers[:count]].sum(0); y = a*y + gain*acc: decode_lowpass_jit.
 * Indices outside the n_pre rows are skipped, as in accumulate_rows. */
HOT static void WNAME(decode_lowpass)(const WEIGHT *decoders, REAL scale,
                                      const int64_t *spikers, int64_t count, int64_t n_pre,
                                      int64_t d, REAL *y, REAL a, REAL gain, REAL *acc)
{
    for (int64_t j = 0; j < d; j++)
        acc[j] = 0;
    WNAME(accumulate_rows)(decoders, scale, n_pre, d, spikers, count, acc);
    for (int64_t j = 0; j < d; j++)
        y[j] = a * y[j] + gain * acc[j];
}

/* dst = enc @ x, or dst += enc @ x, each row's dot product summed first, from its first
 * element on: encode_rows_jit. */
HOT static void WNAME(encode_rows)(const WEIGHT *enc, REAL scale, int64_t n, int64_t d,
                                   const REAL *x, REAL *dst, int add)
{
    (void)scale;
    WBUF(1);
    for (int64_t i = 0; i < n; i++) {
        const WEIGHT *row = enc + i * d;
        REAL acc = 0;
        for (int64_t j0 = 0; j0 < d; j0 += WCHUNK) {
            const int64_t m = d - j0 < WCHUNK ? d - j0 : WCHUNK;
            const WROW *r = WIDEN(row + j0, 0, m);
            const REAL *xs = x + j0;
            int64_t j = 0;
            if (j0 == 0) {
                acc = LOAD(r[0]) * xs[0];
                j = 1;
            }
            for (; j < m; j++)
                acc += LOAD(r[j]) * xs[j];
        }
        dst[i] = add ? dst[i] + acc : acc;
    }
}

#undef WEIGHT
#undef WROW
#undef WNAME
#undef WCHUNK
#undef WBUF
#undef WIDEN
#undef LOAD
#undef ENCODE8
#undef ACCUM
