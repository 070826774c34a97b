/* xg_avx512.h: the avx512 target's hooks (XG_HAVE_<HOOK> for each it defines).
 * Needs, defined by the network's .c before it includes this: xg_word_t, xg_acc_t, XG_WORD_BITS, XG_FB and the other XG_ configuration macros; xg_base.h.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_AVX512_H
#define XG_AVX512_H

/* AVX-512 VPOPCNTDQ: eight 64-bit words per vpopcntq.
 * xg_xor_popcount_block (when the kernels block filters, XG_FB a multiple of 8): one input
 * word broadcast against eight interleaved filter words, one 64-bit lane per filter.
 * Built without -mavx512f -mavx512vpopcntdq, or with -DXG_NO_SIMD, the portable C is used. */
#define XG_POPCOUNT(x) __builtin_popcountll(x)
#if defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__) && !defined(XG_NO_SIMD)
#include <immintrin.h>
#define XG_SIMD "avx512-vpopcntdq"
#define XG_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)   /* a hint: never faults */
/* The first n of 16 lanes (all of them for n >= 16): the mask of a partial vector. */
static inline __mmask16 xg_mask16(int n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}
#if defined(__FMA__)
/* float taps: one vfmadd231ps per 16 filters (the float conv/dense hot loop, XG_FFB = 16) */
#define XG_VFMA(s, x, w) ((xg_fvec)_mm512_fmadd_ps(_mm512_set1_ps(x), (__m512)(w), (__m512)(s)))
#endif
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#define xg_xor_popcount_lanes xg_xor_popcount_lanes_portable
#define xg_sign_tile xg_sign_tile_portable
#include "xg_scalar.h"
#undef xg_xor_popcount_block
#undef xg_xor_popcount_lanes
#undef xg_sign_tile
#if defined(XG_FPX) && XG_FPX == 16 && XG_FFB == 16
/* Float conv pixel lanes: 16 outputs in one vector (stride 1 or split rows: one load; else a
 * gather) times 16 filters, each weight broadcast into its own accumulator.
 * Same operations in the same order as the portable hook: fmaf(x, w, acc) where XG_FMA, else
 * acc + x * w. */
#define XG_HAVE_MACC_LANES 1
#if XG_FMA
#define XG_LMACC(a, wv) a = _mm512_fmadd_ps(_mm512_set1_ps(wv), xv, a)
#else
#define XG_LMACC(a, wv) a = _mm512_add_ps(a, _mm512_mul_ps(xv, _mm512_set1_ps(wv)))
#endif
static inline void xg_macc_lanes(const float *restrict x, int xs, int half, int cs, int xrow, int nc, int rows,
                                 int kh, int run, const float *restrict w, float acc[XG_FFB][XG_FPX])
{
    const __m512i step = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(xs));
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
           a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r)
            for (int t = 0; t < run; ++t) {
                const float *xp = x + (size_t)c * cs + r * xrow + (half ? t % 2 * half + t / 2 : t);
                const float *wp = w + ((size_t)(c * kh + r) * run + t) * 16;
                /* stride 1 or split rows: the 16 outputs' inputs are contiguous (the plan gives every
                 * stride-2 conv split rows; a gather keeps any other stride correct) */
                const __m512 xv = half || xs == 1 ? _mm512_loadu_ps(xp) : _mm512_i32gather_ps(step, xp, 4);
                XG_LMACC(a0, wp[0]); XG_LMACC(a1, wp[1]); XG_LMACC(a2, wp[2]); XG_LMACC(a3, wp[3]);
                XG_LMACC(a4, wp[4]); XG_LMACC(a5, wp[5]); XG_LMACC(a6, wp[6]); XG_LMACC(a7, wp[7]);
                XG_LMACC(a8, wp[8]); XG_LMACC(a9, wp[9]); XG_LMACC(a10, wp[10]); XG_LMACC(a11, wp[11]);
                XG_LMACC(a12, wp[12]); XG_LMACC(a13, wp[13]); XG_LMACC(a14, wp[14]); XG_LMACC(a15, wp[15]);
            }
    _mm512_storeu_ps(acc[0], a0); _mm512_storeu_ps(acc[1], a1); _mm512_storeu_ps(acc[2], a2);
    _mm512_storeu_ps(acc[3], a3); _mm512_storeu_ps(acc[4], a4); _mm512_storeu_ps(acc[5], a5);
    _mm512_storeu_ps(acc[6], a6); _mm512_storeu_ps(acc[7], a7); _mm512_storeu_ps(acc[8], a8);
    _mm512_storeu_ps(acc[9], a9); _mm512_storeu_ps(acc[10], a10); _mm512_storeu_ps(acc[11], a11);
    _mm512_storeu_ps(acc[12], a12); _mm512_storeu_ps(acc[13], a13); _mm512_storeu_ps(acc[14], a14);
    _mm512_storeu_ps(acc[15], a15);
}
#endif
/* A pooling row's interior, 16 outputs at a time kept in a register over the whole window:
 * stride 1 one load, stride 2 two loads and a permute (masked at the row's end, so nothing past
 * the last input read), else a gather. _mm512_max_ps(v, a) is v > a ? v : a, the portable
 * loop's operation (NaN and equal operands give a); the taps in the same order. The results go
 * straight to the output row: a buffer in between is read back from a masked store, which the
 * core cannot forward (cifar_xnor's 8-wide pool4 took 4x longer). gcc had left cifar_xnor's
 * 2x2 stride-2 pool2 (16 outputs a row) scalar: 0.0145 -> 0.0071 ms; rows of fewer than 16
 * outputs it compiles better than this (8 wide: 0.0023 ms here, 0.0015 portable). */
#define XG_HAVE_POOL_ROWS 1
static inline void xg_pool_rows(const float *restrict x, int xrow, int xs, int kw, int rows, int n, float init,
                                int max, float div, float *restrict out)
{
    if (n < 16) {                      /* gcc vectorizes these (8 wide) better than masked vectors */
        xg_pool_rows_portable(x, xrow, xs, kw, rows, n, init, max, div, out);
        return;
    }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i step = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(xs));
    for (int i0 = 0; i0 < n; i0 += 16) {
        const int m = n - i0 < 16 ? n - i0 : 16;
        const __mmask16 live = xg_mask16(m);
        __m512 a = _mm512_set1_ps(init);
        for (int r = 0; r < rows; ++r)
            for (int t = 0; t < kw; ++t) {
                const float *xp = x + (size_t)r * xrow + (size_t)i0 * xs + t;
                __m512 v;
                if (xs == 1) {
                    v = _mm512_maskz_loadu_ps(live, xp);
                } else if (xs == 2) {                /* inputs xp[0], xp[2], ..., xp[2 * (m - 1)] */
                    const __mmask16 lo = xg_mask16(2 * m - 1), hi = xg_mask16(2 * m - 1 - 16 > 0 ? 2 * m - 1 - 16 : 0);
                    v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, xp), even, _mm512_maskz_loadu_ps(hi, xp + 16));
                } else {
                    v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, step, xp, 4);
                }
                a = max ? _mm512_max_ps(v, a) : _mm512_add_ps(a, v);
            }
        if (div != 1.0f)
            a = _mm512_div_ps(a, _mm512_set1_ps(div));
        _mm512_mask_storeu_ps(out + i0, live, a);
    }
}
#if XG_BT == 16
#define XG_HAVE_SIGN_TILE 1
/* Binarize 16 pixels: one compare to a mask per channel, ORed into two vectors of words under
 * that mask; the batchnorm and |x| in the scalar code's operations and order (no contraction). */
static inline void xg_sign_tile(const float *restrict in, int hw, int c0, int c1, const float *mean,
                                const float *scale, const float *beta, xg_word_t bits[XG_BT], float *restrict a)
{
    __m512i b0 = _mm512_setzero_si512(), b1 = b0;
    __m512 s = a ? _mm512_loadu_ps(a) : _mm512_setzero_ps();
    for (int c = c0; c < c1; ++c) {
        /* a tile reads one line of each of up to 64 channel rows, more streams than the hardware
         * prefetcher follows: fetch the line four tiles ahead (0.063 -> 0.047 ms on L2's stage
         * with the input evicted to L3) */
        _mm_prefetch((const char *)(in + (size_t)c * hw + 4 * XG_BT), _MM_HINT_T0);
        __m512 x = _mm512_loadu_ps(in + (size_t)c * hw);
        if (mean)
            x = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(x, _mm512_set1_ps(mean[c])), _mm512_set1_ps(scale[c])),
                              _mm512_set1_ps(beta[c]));
        const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NGE_UQ);   /* !(x >= 0) */
        const __m512i bit = _mm512_set1_epi64((long long)((xg_word_t)1 << (c % XG_WORD_BITS)));
        b0 = _mm512_mask_or_epi64(b0, (__mmask8)neg, b0, bit);
        b1 = _mm512_mask_or_epi64(b1, (__mmask8)(neg >> 8), b1, bit);
        s = _mm512_add_ps(s, _mm512_abs_ps(x));
    }
    _mm512_storeu_si512((void *)bits, b0);
    _mm512_storeu_si512((void *)(bits + 8), b1);
    if (a)
        _mm512_storeu_ps(a, s);
}
#else
#define xg_sign_tile xg_sign_tile_portable
#endif
#if XG_FB == 16
/* A fused binarize epilogue's 16 sign bits in one compare to a mask. The portable loop, which gcc
 * vectorizes into an OR reduction, cost ResNet-18 1.4-1.5 % (benchmarks/ab.py). */
#define XG_HAVE_SIGN_BITS 1
static inline uint32_t xg_sign_bits(const float y[16], int nf)
{
    const __mmask16 live = xg_mask16(nf);
    return _cvtmask16_u32(_mm512_mask_cmp_ps_mask(live, _mm512_maskz_loadu_ps(live, y), _mm512_setzero_ps(),
                                                  _CMP_NGE_UQ));   /* !(y >= 0) */
}
#endif
#if XG_SL == 16 && XG_WORD_BITS == 64
/* Xnor dense input, 16 floats per step: one compare to a mask (four make a word) and |x| added
 * to a vector of the 16 partial sums; a masked load zero-fills the tail (sign bit 0, |0| adds
 * nothing), then the partials added by xg_pairwise_sum. FC: the two scalar loops
 * took 25 % of the layer. */
#define XG_HAVE_PACK_VECTOR 1
static inline void xg_pack_vector(const float *in, int n, xg_word_t *packed, float *beta)
{
    __m512 sum = _mm512_setzero_ps();
    for (int w = 0; w * 64 < n; ++w) {
        uint64_t bits = 0;
        for (int q = 0; q < 4 && w * 64 + q * 16 < n; ++q) {
            const int i = w * 64 + q * 16;
            const __mmask16 live = xg_mask16(n - i);
            const __m512 x = _mm512_maskz_loadu_ps(live, in + i);
            bits |= (uint64_t)_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NGE_UQ) << (16 * q);   /* !(x >= 0) */
            sum = _mm512_add_ps(sum, _mm512_abs_ps(x));
        }
        packed[w] = bits;
    }
    if (beta) {
        float s[16];
        _mm512_storeu_ps(s, sum);
        *beta = xg_pairwise_sum(s) / (float)n;
    }
}
#endif
#if defined(XG_PX) && XG_PX == 16 && XG_PF == 4
#define XG_HAVE_XOR_POPCOUNT_LANES 1
/* Pixel lanes: 16 outputs (two vectors, one word of each output per lane), or 8 (one vector),
 * x 4 filters (their words broadcast), accumulators kept in registers. */
#define XG_LANES_STEP(pf, a0, a1) do { \
        const __m512i wv = _mm512_set1_epi64((long long)wp[pf]); \
        a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(x0, wv))); \
        if (two) \
            a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(_mm512_xor_si512(x1, wv))); } while (0)
/* 16 counts in one 512-bit store: the caller's epilogue reads them as one vector, and a load
 * spanning two narrower stores cannot be forwarded from them (L2's conv: -4 %) */
#define XG_LANES_STORE(pf, a0, a1) do { \
        if (two) \
            _mm512_storeu_si512((void *)cnt[pf], _mm512_permutex2var_epi32(a0, even, a1)); \
        else \
            _mm256_storeu_si256((__m256i *)cnt[pf], _mm512_cvtepi64_epi32(a0)); } while (0)
/* Eight outputs' words: consecutive (xs = 1), or every other one (xs = 2: two loads and a
 * permute; the second load is masked to the 7 words used, so it never reads past them). */
static inline __m512i xg_lane_words(const xg_word_t *xp, int xs)
{
    if (xs == 1)
        return _mm512_loadu_si512((const void *)xp);
    return _mm512_permutex2var_epi64(_mm512_loadu_si512((const void *)xp), _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0),
                                     _mm512_maskz_loadu_epi64(0x7f, (const void *)(xp + 8)));
}
static inline void xg_lanes_avx512(const xg_word_t *restrict x, int xrow, int xs, const xg_word_t *restrict w,
                                   int rows, int run, const int two, int32_t cnt[XG_PF][XG_PX])
{
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
            a31 = a00;
    /* the low halves of a0's then a1's 64-bit counts (each < 2^31): one vpermt2d per filter */
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int r = 0; r < rows; ++r)
        for (int t = 0; t < run; ++t) {
            const xg_word_t *xp = x + (size_t)r * xrow + t, *wp = w + (size_t)(r * run + t) * XG_FB;
            const __m512i x0 = xg_lane_words(xp, xs);
            const __m512i x1 = two ? xg_lane_words(xp + 8 * xs, xs) : x0;
            XG_LANES_STEP(0, a00, a01);
            XG_LANES_STEP(1, a10, a11);
            XG_LANES_STEP(2, a20, a21);
            XG_LANES_STEP(3, a30, a31);
        }
    XG_LANES_STORE(0, a00, a01);
    XG_LANES_STORE(1, a10, a11);
    XG_LANES_STORE(2, a20, a21);
    XG_LANES_STORE(3, a30, a31);
}
static inline void xg_xor_popcount_lanes(const xg_word_t *restrict x, int xrow, int xs, const xg_word_t *restrict w,
                                         int rows, int run, int nl, int32_t cnt[XG_PF][XG_PX])
{
    if (xs > 2) {                      /* not planned (plan.pixel_lanes), kept correct anyway */
        xg_xor_popcount_lanes_portable(x, xrow, xs, w, rows, run, nl, cnt);
        return;
    }
    if (nl == 16)                      /* two copies, each with its lane count known */
        xg_lanes_avx512(x, xrow, xs, w, rows, run, 1, cnt);
    else
        xg_lanes_avx512(x, xrow, xs, w, rows, run, 0, cnt);
}
#elif defined(XG_PX)
#define xg_xor_popcount_lanes xg_xor_popcount_lanes_portable
#endif
#if defined(XG_TP) && XG_TP == 16 && XG_FB == 16
/* Tiles of 16 outputs x 16 filters (tile[i][b]) turned into one vector per filter in registers:
 * unpack ps, unpack pd, then two rounds of 128-bit lane shuffles (64 shuffles in all). */
#define XG_HAVE_TILE_STORE 1
static inline void xg_transpose16(const float tile[16][16], __m512 col[16])
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i)
        r[i] = _mm512_loadu_ps(tile[i]);
    for (int i = 0; i < 16; i += 2) {           /* per 128-bit lane: rows i, i+1 interleaved */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {           /* r[i + j], lane L: column 4L + j of rows i..i+3 */
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    for (int j = 0; j < 4; ++j) {               /* lanes 0 and 2 (0x88) or 1 and 3 (0xdd) of rows 0-7, 8-15 */
        t[2 * j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[2 * j + 1] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + 2 * j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[8 + 2 * j + 1] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; ++j) {               /* column 4L + j: lane L of r[j], r[4 + j], r[8 + j], r[12 + j] */
        col[j] = _mm512_shuffle_f32x4(t[2 * j], t[8 + 2 * j], 0x88);
        col[4 + j] = _mm512_shuffle_f32x4(t[2 * j + 1], t[9 + 2 * j], 0x88);
        col[8 + j] = _mm512_shuffle_f32x4(t[2 * j], t[8 + 2 * j], 0xdd);
        col[12 + j] = _mm512_shuffle_f32x4(t[2 * j + 1], t[9 + 2 * j], 0xdd);
    }
}
/* The same values as the portable hooks: only v + res, or a + |y| per filter in filter order. */
static inline void xg_tile_store(const float tile[16][16], int np, int nf, float *restrict out, size_t plane,
                                 const float *restrict res)
{
    __m512 col[16];
    xg_transpose16(tile, col);
    const __mmask16 m = xg_mask16(np);
    for (int b = 0; b < nf; ++b) {
        __m512 v = col[b];
        if (res)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + b * plane));
        _mm512_mask_storeu_ps(out + b * plane, m, v);
    }
}
static inline void xg_tile_accumulate(const float tile[16][16], int np, int nf, float *restrict a)
{
    __m512 col[16];
    xg_transpose16(tile, col);
    const __mmask16 m = xg_mask16(np);
    __m512 s = _mm512_maskz_loadu_ps(m, a);
    for (int b = 0; b < nf; ++b)
        s = _mm512_add_ps(s, col[b]);
    _mm512_mask_storeu_ps(a, m, s);
}
#endif
#if defined(XG_FB) && XG_FB % 8 == 0
#define XG_HAVE_XOR_POPCOUNT_BLOCK 1
static inline void xg_xor_popcount_block(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                         xg_acc_t *restrict acc)
{
    typedef char xg_acc_must_be_64_bit[sizeof(xg_acc_t) == 8 ? 1 : -1];
    (void)sizeof(xg_acc_must_be_64_bit);
    for (int b0 = 0; b0 < XG_FB; b0 += 8) {
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        int j = 0;
        for (; j + 2 <= n; j += 2) {     /* two independent accumulators hide vpaddq latency */
            const __m512i w0 = _mm512_loadu_si512((const void *)(w + (size_t)j * XG_FB + b0));
            const __m512i w1 = _mm512_loadu_si512((const void *)(w + (size_t)(j + 1) * XG_FB + b0));
            s0 = _mm512_add_epi64(s0, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_set1_epi64((long long)x[j]), w0)));
            s1 = _mm512_add_epi64(s1, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_set1_epi64((long long)x[j + 1]), w1)));
        }
        if (j < n) {
            const __m512i w0 = _mm512_loadu_si512((const void *)(w + (size_t)j * XG_FB + b0));
            s0 = _mm512_add_epi64(s0, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_set1_epi64((long long)x[j]), w0)));
        }
        _mm512_storeu_si512((void *)(acc + b0),
                            _mm512_add_epi64(_mm512_loadu_si512((const void *)(acc + b0)), _mm512_add_epi64(s0, s1)));
    }
}
/* The xnor dense layer's hook (target stream_prefetch): the block sums over a weight stream read
 * once, front to back. One pass in address order (per input word one broadcast against the
 * XG_FB / 8 contiguous filter vectors), each line prefetched `ahead` bytes in advance: FC (2 MiB
 * of weights) 0.060 -> 0.045 ms warm, 0.13 -> 0.10 ms with 64 MiB written between calls, C
 * harness. The per-pixel conv path keeps xg_xor_popcount_block: there one pass measured 3-7 %
 * slower on L3 (runs of 24 words in L1, fully unrolled). */
#define XG_HAVE_XOR_POPCOUNT_STREAM 1
static inline void xg_xor_popcount_stream(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                          xg_acc_t *restrict acc, int ahead)
{
    __m512i s[XG_FB / 8];
    for (int v = 0; v < XG_FB / 8; ++v)
        s[v] = _mm512_setzero_si512();
    for (int j = 0; j < n; ++j) {
        const __m512i xj = _mm512_set1_epi64((long long)x[j]);
        for (int v = 0; v < XG_FB / 8; ++v) {
            const xg_word_t *wv = w + (size_t)j * XG_FB + 8 * v;
            XG_PREFETCH((const void *)((uintptr_t)wv + (uintptr_t)ahead));   /* past the weights: no object */
            s[v] = _mm512_add_epi64(s[v], _mm512_popcnt_epi64(_mm512_xor_si512(xj, _mm512_loadu_si512((const void *)wv))));
        }
    }
    for (int v = 0; v < XG_FB / 8; ++v)
        _mm512_storeu_si512((void *)(acc + 8 * v),
                            _mm512_add_epi64(_mm512_loadu_si512((const void *)(acc + 8 * v)), s[v]));
}
#elif defined(XG_FB)
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#endif
#else
#define XG_SIMD "portable"
#include "xg_scalar.h"
#endif

#endif /* XG_AVX512_H */
