/* xg_avx2.h: the avx2 target's hooks (XG_HAVE_<HOOK> for each it defines).
 * Needs, defined by the network's .c before it includes this: xg_word_t, xg_acc_t, XG_WORD_BITS, XG_FB and the other XG_ configuration macros; xg_base.h.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_AVX2_H
#define XG_AVX2_H

/* AVX2: four 64-bit words per step, counted with the pshufb nibble table (each byte's low
 * and high nibble looked up in a 16-entry table of bit counts; vpsadbw sums the bytes of
 * each 64-bit lane). Runs here are short (a kernel row: kw * words per pixel), too short for
 * Harley-Seal's carry-save adders to pay off.
 * xg_xor_popcount_block (XG_FB a multiple of 4): one input word broadcast against up to 16
 * interleaved filter words (four vectors); byte counts accumulate for up to 31 words before one
 * vpsadbw. Float and bwn blocks of 16 filters (target float_block) have their own windows.
 * Built without -mavx2, or with -DXG_NO_SIMD, the portable C is used. */
#define XG_POPCOUNT(x) __builtin_popcountll(x)
#if defined(__AVX2__) && !defined(XG_NO_SIMD)
#include <immintrin.h>
#define XG_SIMD "avx2-pshufb"
#if defined(__FMA__) && XG_FFB == 8
/* float taps: one vfmadd231ps per 8 filters (the float conv/dense hot loop, XG_FFB = 8) */
#define XG_VFMA(s, x, w) ((xg_fvec)_mm256_fmadd_ps(_mm256_set1_ps(x), (__m256)(w), (__m256)(s)))
#elif XG_FFB == 16 && (!XG_FMA || defined(__FMA__)) && (defined(__GNUC__) || defined(__clang__))
/* The float conv window (xg_common.h's xg_macc_window_px) for 16 filters in two vectors: each
 * broadcast input feeds two FMAs, so pb = 4 outputs need 6 loads per 8 FMAs (8 outputs of one
 * vector: 9 loads, more than the two load ports keep up with). Per output, the same operations
 * per tap in the same order: fmaf where XG_FMA, else a multiply then an add. */
#define XG_HAVE_MACC_WINDOW 1
#if XG_FMA
#define XG_MACC8(s, x, w) _mm256_fmadd_ps(x, w, s)
#else
#define XG_MACC8(s, x, w) _mm256_add_ps(s, _mm256_mul_ps(x, w))
#endif
/* A window's pb outputs x 16 filters: accumulators in registers, lo = filters 0-7, hi = 8-15. */
static inline void xg_pairs_load(const float *restrict acc, int pb, __m256 lo[XG_PB], __m256 hi[XG_PB])
{
    for (int p = 0; p < pb; ++p) {
        lo[p] = _mm256_loadu_ps(acc + p * 16);
        hi[p] = _mm256_loadu_ps(acc + p * 16 + 8);
    }
}
static inline void xg_pairs_store(float *restrict acc, int pb, const __m256 lo[XG_PB], const __m256 hi[XG_PB])
{
    for (int p = 0; p < pb; ++p) {
        _mm256_storeu_ps(acc + p * 16, lo[p]);
        _mm256_storeu_ps(acc + p * 16 + 8, hi[p]);
    }
}
static inline void xg_macc_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const float *restrict w, int n, int pb, float *restrict acc)
{
    __m256 lo[XG_PB], hi[XG_PB];
    xg_pairs_load(acc, pb, lo, hi);
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r) {
            const float *xr = x + (size_t)c * cs + r * xrow, *wr = w + ((size_t)c * kh + r) * n * 16;
            for (int j = 0; j < n; ++j) {
                const __m256 w0 = _mm256_loadu_ps(wr + j * 16), w1 = _mm256_loadu_ps(wr + j * 16 + 8);
                for (int p = 0; p < pb; ++p) {
                    const __m256 xv = _mm256_set1_ps(xr[p * xs + j]);
                    lo[p] = XG_MACC8(lo[p], xv, w0);
                    hi[p] = XG_MACC8(hi[p], xv, w1);
                }
            }
        }
    xg_pairs_store(acc, pb, lo, hi);
}
/* The bwn window (xg_common.h's xg_sign_window_px) for the same blocks: per tap, +1.0 or -1.0
 * per filter (-1.0 where bit b of the tap's mask is set), then one multiply-add per output, which
 * rounds to exactly the sum + or - x in the same order. */
static inline void xg_sign_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const xg_mask_t *restrict m, int n, int pb, float *restrict acc)
{
    /* shifting the mask left by 31 - b puts bit b of filter b in its lane's sign bit, of +1.0 */
    const __m256i sh_lo = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
    const __m256i sh_hi = _mm256_setr_epi32(23, 22, 21, 20, 19, 18, 17, 16);
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u), one = _mm256_set1_epi32(0x3f800000);
    __m256 lo[XG_PB], hi[XG_PB];
    xg_pairs_load(acc, pb, lo, hi);
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r) {
            const float *xr = x + (size_t)c * cs + r * xrow;
            const xg_mask_t *mr = m + ((size_t)c * kh + r) * n;
            for (int j = 0; j < n; ++j) {
                const __m256i mv = _mm256_set1_epi32((int)mr[j]);
                const __m256 f0 = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(_mm256_sllv_epi32(mv, sh_lo), sign), one));
                const __m256 f1 = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(_mm256_sllv_epi32(mv, sh_hi), sign), one));
                for (int p = 0; p < pb; ++p) {
                    const __m256 xv = _mm256_set1_ps(xr[p * xs + j]);
                    lo[p] = XG_MACC8(lo[p], xv, f0);
                    hi[p] = XG_MACC8(hi[p], xv, f1);
                }
            }
        }
    xg_pairs_store(acc, pb, lo, hi);
}
#endif
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#define xg_sign_tile xg_sign_tile_portable
#include "xg_scalar.h"
#undef xg_xor_popcount_block
#undef xg_sign_tile
/* Lanes [0, n) of 8 (n <= 0: none, n >= 8: all). */
static inline __m256i xg_mask8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#if XG_BT == 16 && XG_WORD_BITS == 64
#define XG_HAVE_SIGN_TILE 1
/* Binarize 16 pixels (two vectors of 8): per channel a compare gives all-ones lanes where
 * !(x >= 0), ANDed with the channel's bit and ORed into 32-bit lanes; channels 0-31 of the word
 * go to one pair of accumulators, 32-63 to another, interleaved into the 64-bit words once per
 * tile (AVX2 has no masked OR of 64-bit lanes, and widening each mask would cost 4 shuffles per
 * channel). The batchnorm and |x| in the scalar code's operations and order (no contraction). */
static inline void xg_sign_half(const float *restrict in, int hw, int c0, int c1, const float *mean,
                                const float *scale, const float *beta, __m256i h[2], __m256 s[2], int a)
{
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    for (int c = c0; c < c1; ++c) {
        /* as on AVX-512: up to 64 channel rows per tile, more streams than the hardware
         * prefetcher follows, so each row's line four tiles ahead is fetched here */
        _mm_prefetch((const char *)(in + (size_t)c * hw + 4 * XG_BT), _MM_HINT_T0);
        __m256 x0 = _mm256_loadu_ps(in + (size_t)c * hw), x1 = _mm256_loadu_ps(in + (size_t)c * hw + 8);
        if (mean) {
            const __m256 m = _mm256_set1_ps(mean[c]), k = _mm256_set1_ps(scale[c]), b = _mm256_set1_ps(beta[c]);
            x0 = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(x0, m), k), b);
            x1 = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(x1, m), k), b);
        }
        const __m256i bit = _mm256_set1_epi32((int)(1u << (c % 32)));
        h[0] = _mm256_or_si256(h[0], _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(x0, zero, _CMP_NGE_UQ)), bit));
        h[1] = _mm256_or_si256(h[1], _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(x1, zero, _CMP_NGE_UQ)), bit));
        if (a) {
            s[0] = _mm256_add_ps(s[0], _mm256_andnot_ps(sign, x0));
            s[1] = _mm256_add_ps(s[1], _mm256_andnot_ps(sign, x1));
        }
    }
}
static inline void xg_sign_tile(const float *restrict in, int hw, int c0, int c1, const float *mean,
                                const float *scale, const float *beta, xg_word_t bits[XG_BT], float *restrict a)
{
    __m256i lo[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()}, hi[2] = {lo[0], lo[0]};
    __m256 s[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    if (a) {
        s[0] = _mm256_loadu_ps(a);
        s[1] = _mm256_loadu_ps(a + 8);
    }
    const int mid = c0 - c0 % 64 + 32;             /* the word's first channel of the high half */
    xg_sign_half(in, hw, c0, c1 < mid ? c1 : mid, mean, scale, beta, lo, s, a != NULL);
    xg_sign_half(in, hw, c0 > mid ? c0 : mid, c1, mean, scale, beta, hi, s, a != NULL);
    for (int v = 0; v < 2; ++v) {       /* (lo, hi) of pixels 0,1,4,5 and 2,3,6,7, then in order */
        const __m256i u0 = _mm256_unpacklo_epi32(lo[v], hi[v]), u1 = _mm256_unpackhi_epi32(lo[v], hi[v]);
        _mm256_storeu_si256((__m256i *)(bits + 8 * v), _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256((__m256i *)(bits + 8 * v + 4), _mm256_permute2x128_si256(u0, u1, 0x31));
    }
    if (a) {
        _mm256_storeu_ps(a, s[0]);
        _mm256_storeu_ps(a + 8, s[1]);
    }
}
#else
#define xg_sign_tile xg_sign_tile_portable
#endif
/* A pooling row's interior, 8 outputs at a time kept in a register over the whole window:
 * stride 1 one load, stride 2 two loads and two shuffles (the row's last vector masked, so
 * nothing past the row's last input is read), else a gather. _mm256_max_ps(v, a) is v > a ? v : a, the portable loop's
 * operation (NaN and equal operands give a); the taps in the same order. Rows of fewer than 8
 * take the portable loop. */
#define XG_HAVE_POOL_ROWS 1
static inline void xg_pool_rows(const float *restrict x, int xrow, int xs, int kw, int rows, int n, float init,
                                int max, float div, float *restrict out)
{
    if (n < 8) {
        xg_pool_rows_portable(x, xrow, xs, kw, rows, n, init, max, div, out);
        return;
    }
    const __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(xs));
    for (int i0 = 0; i0 < n; i0 += 8) {
        const int m = n - i0 < 8 ? n - i0 : 8;
        const __m256i live = xg_mask8(m), lo = xg_mask8(2 * m - 1), hi = xg_mask8(2 * m - 1 - 8);
        __m256 acc = _mm256_set1_ps(init);
        for (int r = 0; r < rows; ++r)
            for (int t = 0; t < kw; ++t) {
                const float *xp = x + (size_t)r * xrow + (size_t)i0 * xs + t;
                __m256 v;
                if (xs == 1) {
                    v = m == 8 ? _mm256_loadu_ps(xp) : _mm256_maskload_ps(xp, live);
                } else if (xs == 2) {        /* xp[0], xp[2], ..., xp[14]: evens of each 128-bit lane, reordered */
                    /* xp[15] is the next vector's first input: only the row's last vector needs masks */
                    const int whole = i0 + 8 < n;
                    const __m256 e = _mm256_shuffle_ps(whole ? _mm256_loadu_ps(xp) : _mm256_maskload_ps(xp, lo),
                                                       whole ? _mm256_loadu_ps(xp + 8) : _mm256_maskload_ps(xp + 8, hi), 0x88);
                    v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8));
                } else {
                    v = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xp, step, _mm256_castsi256_ps(live), 4);
                }
                acc = max ? _mm256_max_ps(v, acc) : _mm256_add_ps(acc, v);
            }
        if (div != 1.0f)
            acc = _mm256_div_ps(acc, _mm256_set1_ps(div));
        if (m == 8)
            _mm256_storeu_ps(out + i0, acc);
        else
            _mm256_maskstore_ps(out + i0, live, acc);
    }
}
/* Bit count of every byte of x. */
static inline __m256i xg_avx2_bytecount(__m256i x)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(x, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}
#if defined(XG_FB) && XG_FB % 4 == 0
#define XG_HAVE_XOR_POPCOUNT_BLOCK 1
/* Up to four 4-filter groups of a block in one pass over the words (blocks of more filters take
 * several passes): each input word is broadcast once and meets every group of the pass, and the
 * groups' byte counts are independent chains. Against one pass per group (filter_block 4):
 * L1 0.83, L2 0.75-0.77, L3 0.76-0.79 of the time (benchmarks/ab.py); 32 filters in one pass
 * ran out of registers (L1 0.94). */
static inline void xg_xor_popcount_block(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                         xg_acc_t *restrict acc)
{
    typedef char xg_acc_must_be_64_bit[sizeof(xg_acc_t) == 8 ? 1 : -1];
    (void)sizeof(xg_acc_must_be_64_bit);
    for (int b0 = 0; b0 < XG_FB; b0 += 16) {
        const int ng = XG_FB - b0 >= 16 ? 4 : (XG_FB - b0) / 4;     /* groups in this pass */
        __m256i s[4];
        for (int g = 0; g < ng; ++g)
            s[g] = _mm256_setzero_si256();
        for (int j0 = 0; j0 < n; j0 += 31) {          /* a byte holds at most 31 * 8 = 248 */
            const int j1 = n - j0 > 31 ? j0 + 31 : n;
            __m256i bytes[4];
            for (int g = 0; g < ng; ++g)
                bytes[g] = _mm256_setzero_si256();
            for (int j = j0; j < j1; ++j) {
                const __m256i xv = _mm256_set1_epi64x((long long)x[j]);
                for (int g = 0; g < ng; ++g) {
                    const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + (size_t)j * XG_FB + b0 + 4 * g));
                    bytes[g] = _mm256_add_epi8(bytes[g], xg_avx2_bytecount(_mm256_xor_si256(xv, wv)));
                }
            }
            for (int g = 0; g < ng; ++g)
                s[g] = _mm256_add_epi64(s[g], _mm256_sad_epu8(bytes[g], _mm256_setzero_si256()));
        }
        for (int g = 0; g < ng; ++g)
            _mm256_storeu_si256((__m256i *)(acc + b0 + 4 * g),
                                _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(acc + b0 + 4 * g)), s[g]));
    }
}
#elif defined(XG_FB)
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#endif
#if defined(XG_TP) && XG_TP == 16 && XG_FB == 16
/* Tiles of 16 outputs x 16 filters (tile[i][b]) stored as one run per filter: each 8 x 8 quarter
 * transposed in registers (unpack, shuffle, 128-bit permute: 24 shuffles), 8 floats per store.
 * The generic loop gcc leaves scalar. */
#define XG_HAVE_TILE_STORE 1
static inline void xg_transpose8(const float tile[16][16], int p0, int b0, __m256 col[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        const __m256 r0 = _mm256_loadu_ps(&tile[p0 + i][b0]), r1 = _mm256_loadu_ps(&tile[p0 + i + 1][b0]);
        t[i] = _mm256_unpacklo_ps(r0, r1);      /* per 128-bit half: rows i, i+1 of columns 0-1 (4-5) */
        t[i + 1] = _mm256_unpackhi_ps(r0, r1);  /* ... of columns 2-3 (6-7) */
    }
    for (int i = 0; i < 8; i += 4) {            /* rows i..i+3 of column j | column j + 4 */
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int j = 0; j < 4; ++j) {
        col[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        col[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}
/* The same values as the portable hooks: only v + res, or a + |y| per filter in filter order. */
static inline void xg_tile_store(const float tile[16][16], int np, int nf, float *restrict out, size_t plane,
                                 const float *restrict res)
{
    for (int p0 = 0; p0 < np; p0 += 8) {
        const int n = np - p0 < 8 ? np - p0 : 8;
        const __m256i m = xg_mask8(n);
        for (int b0 = 0; b0 < nf; b0 += 8) {
            __m256 col[8];
            xg_transpose8(tile, p0, b0, col);
            for (int b = 0; b < 8 && b0 + b < nf; ++b) {
                float *o = out + (size_t)(b0 + b) * plane + p0;
                __m256 v = col[b];
                if (res)
                    v = _mm256_add_ps(v, _mm256_maskload_ps(res + (size_t)(b0 + b) * plane + p0, m));
                if (n == 8)
                    _mm256_storeu_ps(o, v);
                else
                    _mm256_maskstore_ps(o, m, v);
            }
        }
    }
}
static inline void xg_tile_accumulate(const float tile[16][16], int np, int nf, float *restrict a)
{
    for (int p0 = 0; p0 < np; p0 += 8) {
        const __m256i m = xg_mask8(np - p0 < 8 ? np - p0 : 8);
        __m256 s = _mm256_maskload_ps(a + p0, m);
        for (int b0 = 0; b0 < nf; b0 += 8) {
            __m256 col[8];
            xg_transpose8(tile, p0, b0, col);
            for (int b = 0; b < 8 && b0 + b < nf; ++b)
                s = _mm256_add_ps(s, col[b]);
        }
        _mm256_maskstore_ps(a + p0, m, s);
    }
}
#endif
#else
#define XG_SIMD "portable"
#include "xg_scalar.h"
#endif

#endif /* XG_AVX2_H */
