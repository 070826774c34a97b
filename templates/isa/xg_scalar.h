/* xg_scalar.h: xg_xor_popcount_block from XG_POPCOUNT, one word at a time
 * (compilers vectorize the filter loop where they can).
 * Needs, defined by the network's .c before it includes this: XG_POPCOUNT(x), xg_word_t, xg_acc_t, XG_FB.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_SCALAR_H
#define XG_SCALAR_H

/* The hook every binary kernel's hot loop goes through (a target's ISA header may
 * replace it with an ISA version without touching the kernels):
 * acc[b] += sum over j < n of popcount(x[j] ^ w[j * XG_FB + b]). w holds XG_FB filters
 * interleaved word by word, so each input word meets XG_FB filter words at once; written so
 * compilers vectorize the b loop (vpopcntq on AVX-512). */
static inline void xg_xor_popcount_block(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                         xg_acc_t *restrict acc)
{
    xg_acc_t s[XG_FB] = {0};
    for (int j = 0; j < n; ++j) {
        const xg_word_t xv = x[j];
        for (int b = 0; b < XG_FB; ++b)
            s[b] += (xg_acc_t)XG_POPCOUNT(xv ^ w[j * XG_FB + b]);
    }
    for (int b = 0; b < XG_FB; ++b)
        acc[b] += s[b];
}
#if defined(XG_PX)
/* The pixel-lanes hook (interior outputs of an xnor conv whose neighbouring outputs' words are
 * xs apart): nl (XG_PX or XG_PX / 2) outputs times XG_PF filters of a block.
 * cnt[pf][l] = sum over r < rows, t < run of popcount(x[r * xrow + t + l * xs] ^ w[(r * run + t) * XG_FB + pf])
 * for l < nl: output l's kernel row r is the run of words from x + r * xrow + l * xs, and w holds
 * the block's interleaved weights from the first row on. */
static inline void xg_xor_popcount_lanes(const xg_word_t *restrict x, int xrow, int xs, const xg_word_t *restrict w,
                                         int rows, int run, int nl, int32_t cnt[XG_PF][XG_PX])
{
    for (int pf = 0; pf < XG_PF; ++pf)
        for (int l = 0; l < nl; ++l)
            cnt[pf][l] = 0;
    for (int r = 0; r < rows; ++r)
        for (int t = 0; t < run; ++t)
            for (int pf = 0; pf < XG_PF; ++pf) {
                const xg_word_t wv = w[(r * run + t) * XG_FB + pf];
                for (int l = 0; l < nl; ++l)
                    cnt[pf][l] += (int32_t)XG_POPCOUNT(x[r * xrow + t + l * xs] ^ wv);
            }
}
#endif

/* The binarize hook, one tile of XG_BT pixels and the channels [c0, c1) of one word: x = in[c * hw + l]
 * (through the folded batchnorm (x - mean[c]) * scale[c] + beta[c] when mean is non-null);
 * bits[l] = OR of (x < 0 or NaN) << (c % XG_WORD_BITS), and a[l] += |x| in channel order when a
 * is non-null. */
static inline void xg_sign_tile(const float *restrict in, int hw, int c0, int c1, const float *mean,
                                const float *scale, const float *beta, xg_word_t bits[XG_BT], float *restrict a)
{
    for (int l = 0; l < XG_BT; ++l)
        bits[l] = 0;
    for (int c = c0; c < c1; ++c)
        for (int l = 0; l < XG_BT; ++l) {
            const float v = in[(size_t)c * hw + l];
            const float x = mean ? (v - mean[c]) * scale[c] + beta[c] : v;
            bits[l] |= (xg_word_t)!(x >= 0.0f) << (c % XG_WORD_BITS);
            if (a)
                a[l] += fabsf(x);
        }
}

#endif /* XG_SCALAR_H */
