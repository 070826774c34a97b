/* xg_common.h: the portable hooks, and the fallback for every hook the
 * target's ISA header did not define (XG_HAVE_<HOOK>); included after it.
 * Needs, defined by the network's .c before it includes this: xg_word_t, xg_acc_t, xg_mask_t, XG_WORD_BITS, XG_FB, XG_FFB, XG_BT, XG_SL, XG_PB, XG_FMA, XG_MACC;
 * optionally XG_PX, XG_PF, XG_FPX, XG_TP.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_COMMON_H
#define XG_COMMON_H


#if !defined(XG_PREFETCH)
#define XG_PREFETCH(p) ((void)(p))   /* prefetch hint (plan tiling next_block_prefetch): none here */
#endif

#if !defined(XG_HAVE_SIGN_BITS) && XG_FB <= 32
/* A fused binarize epilogue's sign bits of one pixel (the ISA header may provide its own): bit b
 * set where !(y[b] >= 0) (y < 0 or NaN), for the nf filters of the block; the bits above, 0. */
static inline uint32_t xg_sign_bits(const float y[XG_FB], int nf)
{
    uint32_t bits = 0;
    for (int b = 0; b < nf; ++b)
        bits |= (uint32_t)!(y[b] >= 0.0f) << b;
    return bits;
}
#endif

#if !defined(XG_HAVE_POOL_ROWS)
#define xg_pool_rows xg_pool_rows_portable
#endif

#if !defined(XG_HAVE_PACK_VECTOR)
/* Xnor dense input (the ISA header may provide its own): input i's sign goes to bit
 * i % XG_WORD_BITS of word i / XG_WORD_BITS (1 means -1, x < 0; tail bits stay 0). With beta:
 * beta = mean |x|, summed in XG_SL partial sums (input i into sum i % XG_SL, in input order),
 * added pairwise (xg_pairwise_sum), then divided by n. */
static inline void xg_pack_vector(const float *in, int n, xg_word_t *packed, float *beta)
{
    float s[XG_SL] = {0};
    for (int w = 0; w < (n + XG_WORD_BITS - 1) / XG_WORD_BITS; ++w)
        packed[w] = 0;
    for (int i = 0; i < n; ++i) {
        packed[i / XG_WORD_BITS] |= (xg_word_t)!(in[i] >= 0.0f) << (i % XG_WORD_BITS);
        s[i % XG_SL] += fabsf(in[i]);
    }
    if (beta)
        *beta = xg_pairwise_sum(s) / (float)n;
}
#endif

/* Float conv hot loop: acc[b] += x[j] * w[j * XG_FFB + b] for j < n, in j order (the order of
 * the taps). With GCC/Clang the block is one vector (vector_size extension) so the compiler
 * vectorizes across filters, never across taps (that would reorder the sums); other
 * compilers, or -DXG_NO_SIMD, take the plain loop: same operations, same order. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(XG_NO_SIMD)
typedef float xg_fvec __attribute__((vector_size(4 * XG_FFB)));
typedef uint32_t xg_uvec __attribute__((vector_size(4 * XG_FFB)));

/* s + x * w on a vector of filters: the ISA's fused multiply-add where the target has FMA and its
 * template defines XG_VFMA, fmaf per lane where it has FMA but no such macro, else multiply then add. */
#if defined(XG_HAVE_MACC_WINDOW)
/* the ISA header's own windows do the multiply-adds (and xg_macc_block is one of them) */
#elif XG_FMA && defined(XG_VFMA)
#define XG_VMACC(s, x, w) XG_VFMA(s, x, w)
#elif XG_FMA
static inline xg_fvec xg_vmacc_lanes(xg_fvec s, float x, xg_fvec w)
{
    for (int b = 0; b < XG_FFB; ++b)
        s[b] = fmaf(x, w[b], s[b]);
    return s;
}
#define XG_VMACC(s, x, w) xg_vmacc_lanes(s, x, w)
#else
#define XG_VMACC(s, x, w) ((s) + (x) * (w))
#endif

/* pb (<= XG_PB) neighbouring outputs at once (input columns xs apart), each with its own accumulator
 * vector, over a whole window: nc channels (cs apart) x rows kernel rows (xrow apart) x n taps,
 * weights [c][kh rows][n][XG_FFB] from the window's first row, taps in channel, row, tap order.
 * Independent add chains hide the add latency, and each weight vector loads once. The
 * accumulators stay in registers for the whole window: a call per kernel row sends them through
 * memory every row, a chain of stores and reloads that held ResNet-18's stem on avx2 to a third
 * of the FMA rate (8.5 -> 4.4 ms with this). */
#ifndef XG_HAVE_MACC_WINDOW
static inline void xg_macc_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const float *restrict w, int n, int pb, float *restrict acc)
{
    xg_fvec s[XG_PB], wv;
    for (int p = 0; p < pb; ++p)
        memcpy(&s[p], acc + p * XG_FFB, sizeof wv);
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r) {
            const float *xr = x + (size_t)c * cs + r * xrow, *wr = w + ((size_t)c * kh + r) * n * XG_FFB;
            for (int j = 0; j < n; ++j) {
                memcpy(&wv, wr + j * XG_FFB, sizeof wv);
                for (int p = 0; p < pb; ++p)
                    s[p] = XG_VMACC(s[p], xr[p * xs + j], wv);
            }
        }
    for (int p = 0; p < pb; ++p)
        memcpy(acc + p * XG_FFB, &s[p], sizeof wv);
}
#endif

/* One run of n taps: a window of one channel and one row (border groups, row by row). */
static inline void xg_macc_block_px(const float *restrict x, int xs, const float *restrict w, int n, int pb,
                                    float *restrict acc)
{
    xg_macc_window_px(x, xs, 0, 0, 1, 1, 1, w, n, pb, acc);
}

/* Bwn: xg_macc_window_px with +x or -x per filter (bit b of the tap's mask m set: -x), masks
 * [c][kh rows][n]. With FMA, each tap's mask becomes a vector of +1.0 / -1.0 once and every output
 * takes one fused multiply-add with it: x * (+-1) is exact, so it rounds once to exactly s + (+-x)
 * (bwn 32x28x28 conv: avx512 0.68-0.71 of the time). Without FMA, x with its sign bit flipped is
 * added (a multiply and an add instead measured 4 % slower on x86-64). */
#ifndef XG_HAVE_MACC_WINDOW
static inline void xg_sign_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const xg_mask_t *restrict m, int n, int pb, float *restrict acc)
{
    xg_uvec lane;
    for (int b = 0; b < XG_FFB; ++b)
        lane[b] = (uint32_t)b;
    xg_fvec s[XG_PB], wv;
    for (int p = 0; p < pb; ++p)
        memcpy(&s[p], acc + p * XG_FFB, sizeof wv);
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r) {
            const float *xr = x + (size_t)c * cs + r * xrow;
            const xg_mask_t *mr = m + ((size_t)c * kh + r) * n;
            for (int j = 0; j < n; ++j) {
                const xg_uvec flip = (((xg_uvec){0} + (uint32_t)mr[j]) >> lane & 1u) << 31;
#if XG_FMA
                const xg_uvec one = flip | 0x3f800000u;
                memcpy(&wv, &one, sizeof wv);
                for (int p = 0; p < pb; ++p)
                    s[p] = XG_VMACC(s[p], xr[p * xs + j], wv);
#else
                for (int p = 0; p < pb; ++p) {
                    uint32_t xbits;
                    memcpy(&xbits, xr + p * xs + j, sizeof xbits);
                    const xg_uvec v = ((xg_uvec){0} + xbits) ^ flip;
                    memcpy(&wv, &v, sizeof wv);
                    s[p] += wv;
                }
#endif
            }
        }
    for (int p = 0; p < pb; ++p)
        memcpy(acc + p * XG_FFB, &s[p], sizeof wv);
}
#endif

static inline void xg_sign_block_px(const float *restrict x, int xs, const xg_mask_t *restrict m, int n, int pb,
                                    float *restrict acc)
{
    xg_sign_window_px(x, xs, 0, 0, 1, 1, 1, m, n, pb, acc);
}

/* A float block's run of n taps for one output (the dense layers, single columns): the window
 * with one output, so the same taps in the same order. */
static inline void xg_macc_block(const float *restrict x, const float *restrict w, int n, float *restrict acc)
{
    xg_macc_window_px(x, 0, 0, 0, 1, 1, 1, w, n, 1, acc);
}

/* ... and a bwn block's: acc[b] += +x[j] or -x[j] (bit b of m[j] set: a negative weight). */
static inline void xg_sign_block(const float *restrict x, const xg_mask_t *restrict m, int n, float *restrict acc)
{
    xg_sign_window_px(x, 0, 0, 0, 1, 1, 1, m, n, 1, acc);
}
#else
static inline void xg_macc_block_px(const float *restrict x, int xs, const float *restrict w, int n, int pb,
                                    float *restrict acc)
{
    for (int j = 0; j < n; ++j)
        for (int p = 0; p < pb; ++p)
            for (int b = 0; b < XG_FFB; ++b)
                acc[p * XG_FFB + b] = XG_MACC(x[p * xs + j], w[j * XG_FFB + b], acc[p * XG_FFB + b]);
}

static inline void xg_macc_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const float *restrict w, int n, int pb, float *restrict acc)
{
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r)
            xg_macc_block_px(x + (size_t)c * cs + r * xrow, xs, w + ((size_t)c * kh + r) * n * XG_FFB, n, pb, acc);
}

static inline void xg_sign_block_px(const float *restrict x, int xs, const xg_mask_t *restrict m, int n, int pb,
                                    float *restrict acc)
{
    for (int j = 0; j < n; ++j)
        for (int p = 0; p < pb; ++p)
            for (int b = 0; b < XG_FFB; ++b)
                acc[p * XG_FFB + b] += ((m[j] >> b) & 1u) ? -x[p * xs + j] : x[p * xs + j];
}

static inline void xg_sign_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const xg_mask_t *restrict m, int n, int pb, float *restrict acc)
{
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r)
            xg_sign_block_px(x + (size_t)c * cs + r * xrow, xs, m + ((size_t)c * kh + r) * n, n, pb, acc);
}

static inline void xg_macc_block(const float *restrict x, const float *restrict w, int n, float *restrict acc)
{
    for (int j = 0; j < n; ++j)
        for (int b = 0; b < XG_FFB; ++b)
            acc[b] = XG_MACC(x[j], w[j * XG_FFB + b], acc[b]);
}

static inline void xg_sign_block(const float *restrict x, const xg_mask_t *restrict m, int n, float *restrict acc)
{
    for (int j = 0; j < n; ++j)
        for (int b = 0; b < XG_FFB; ++b)
            acc[b] += ((m[j] >> b) & 1u) ? -x[j] : x[j];
}
#endif

#if defined(XG_FPX) && !defined(XG_HAVE_MACC_LANES)
/* Float conv pixel lanes (the ISA header may provide its own): XG_FPX outputs l whose inputs
 * are xs apart, times the XG_FFB filters b of a block, over the whole window:
 * acc[b][l] = XG_MACC(x[c * cs + r * xrow + t + l * xs], w[((c * kh + r) * run + t) * XG_FFB + b], acc[b][l])
 * for c < nc, r < rows, t < run in that order (the per-output order of every float conv path).
 * half != 0: split rows (even columns, then the odd ones from half): tap t of output l reads
 * x[c * cs + r * xrow + t % 2 * half + t / 2 + l]. */
static inline void xg_macc_lanes(const float *restrict x, int xs, int half, int cs, int xrow, int nc, int rows,
                                 int kh, int run, const float *restrict w, float acc[XG_FFB][XG_FPX])
{
    for (int b = 0; b < XG_FFB; ++b)
        for (int l = 0; l < XG_FPX; ++l)
            acc[b][l] = 0.0f;
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < rows; ++r)
            for (int t = 0; t < run; ++t) {
                const float *xp = x + (size_t)c * cs + r * xrow + (half ? t % 2 * half + t / 2 : t);
                const float *wp = w + ((size_t)(c * kh + r) * run + t) * XG_FFB;
                for (int b = 0; b < XG_FFB; ++b)
                    for (int l = 0; l < XG_FPX; ++l)
                        acc[b][l] = XG_MACC(xp[half ? l : l * xs], wp[b], acc[b][l]);
            }
}
#endif

#if !defined(XG_HAVE_XOR_POPCOUNT_STREAM)
/* Xnor dense weight stream (the ISA header may provide its own, which prefetches `ahead` bytes
 * in front of the weights): the same sums as xg_xor_popcount_block. */
static inline void xg_xor_popcount_stream(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                          xg_acc_t *restrict acc, int ahead)
{
    (void)ahead;
    xg_xor_popcount_block(x, w, n, acc);
}
#endif

#if defined(XG_TP) && !defined(XG_HAVE_TILE_STORE)
/* Xnor conv tile store (the ISA header may provide its own): tile[i][b] is output i of np
 * consecutive ones (raster order) of filter b of nf; filter b's outputs go to out[b * plane + i],
 * plus res[b * plane + i] where res is given (a folded residual add: v + res, as stored directly). */
static inline void xg_tile_store(const float tile[XG_TP][XG_FB], int np, int nf, float *restrict out, size_t plane,
                                 const float *restrict res)
{
    for (int b = 0; b < nf; ++b)
        for (int i = 0; i < np; ++i)
            out[b * plane + i] = res ? tile[i][b] + res[b * plane + i] : tile[i][b];
}
/* ... and a fused binarize epilogue's A: a[i] += tile[i][b] (|y|), filters in order. */
static inline void xg_tile_accumulate(const float tile[XG_TP][XG_FB], int np, int nf, float *restrict a)
{
    for (int b = 0; b < nf; ++b)
        for (int i = 0; i < np; ++i)
            a[i] += tile[i][b];
}
#endif

/* K = A convolved with a kh x kw box of 1/(kh*kw), zero padded, at the layer's stride.
 * Columns [ox0, ox1) (the plan's interior_columns) have every tap in bounds along x: their loop
 * has no test and gcc vectorizes it across outputs, each still summing its taps in (ky, kx)
 * order. (An earlier form, columns innermost and accumulated in k across taps, was miscompiled
 * by gcc 12 -O3 with 512-bit vectors: test_exact_layers::test_k_map_is_bit_exact.)
 * Output rows [oy0, oy1) only: all of them, or a part's range in the parallel entry point. */
typedef struct {
    int h, w;          /* input rows and columns */
    int kh, kw;        /* kernel */
    int sh, sw;        /* stride */
    int ph, pw;        /* zero padding */
    int ho, wo;        /* output rows and columns */
    int ox0, ox1;      /* interior columns: every tap in bounds along x */
} xg_window;

static inline void xg_box_mean(const float *restrict a, float *restrict k, const xg_window win, int oy0, int oy1)
{
    const int h = win.h, w = win.w, kh = win.kh, kw = win.kw, sh = win.sh, sw = win.sw, ph = win.ph, pw = win.pw;
    const int wo = win.wo, ox0 = win.ox0, ox1 = win.ox1;
    for (int oy = oy0; oy < oy1; ++oy) {
        const int iy0 = oy * sh - ph;
        const int ky0 = iy0 < 0 ? -iy0 : 0;
        const int ky1 = h - iy0 < kh ? h - iy0 : kh;
        float *row = k + oy * wo;
        for (int ox = ox0; ox < ox1; ++ox) {
            float s = 0.0f;
            for (int ky = ky0; ky < ky1; ++ky)
                for (int kx = 0; kx < kw; ++kx)
                    s += a[(iy0 + ky) * w + ox * sw - pw + kx];
            row[ox] = s / (float)(kh * kw);
        }
        for (int ox = 0; ox < wo; ++ox) {
            if (ox == ox0 && ox1 > ox0)
                ox = ox1;                 /* the interior is done */
            if (ox >= wo)
                break;
            float s = 0.0f;
            for (int ky = ky0; ky < ky1; ++ky)
                for (int kx = 0; kx < kw; ++kx) {
                    const int ix = ox * sw - pw + kx;
                    if (ix >= 0 && ix < w)
                        s += a[(iy0 + ky) * w + ix];
                }
            row[ox] = s / (float)(kh * kw);
        }
    }
}

#endif /* XG_COMMON_H */
