/* xg_base.h: helpers the ISA headers may build on (included first).
 * Needs, defined by the network's .c before it includes this: xg_word_t, XG_SL, <math.h>.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_BASE_H
#define XG_BASE_H

/* A kernel the parallel entry point splits (hosted targets) takes its range [lo, hi) at run
 * time. Inlined into the driver's step, which passes the whole range as constants, its loops
 * keep the compile-time bounds of a kernel without a range (gcc does not clone it by itself:
 * armv8's digits convs measured 20 % more instructions without this); the part tasks get
 * their own copy, with run-time bounds. */
#if defined(__GNUC__)
#define XG_SPLIT_KERNEL static inline __attribute__((always_inline))
#else
#define XG_SPLIT_KERNEL static inline
#endif

/* An xnor dense layer's beta: its XG_SL partial sums added pairwise (s[l] += s[l + XG_SL / 2],
 * then a quarter, ...), the order every form of xg_pack_vector shares. */
static inline float xg_pairwise_sum(float s[XG_SL])
{
    for (int h = XG_SL / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; ++l)
            s[l] += s[l + h];
    return s[0];
}
/* A pooling row's interior outputs (an ISA header's xg_pool_rows may use it for some rows):
 * out[i] for i < n combines, from init, x[r * xrow + i * xs + t] for r < rows, t < kw in that order, by
 * a = x > a ? x : a (max != 0) or a = a + x, then divides by div unless div is 1 (x / 1 == x). */
static inline void xg_pool_rows_portable(const float *restrict x, int xrow, int xs, int kw, int rows, int n,
                                         float init, int max, float div, float *restrict out)
{
    for (int i = 0; i < n; ++i)
        out[i] = init;
    for (int r = 0; r < rows; ++r)
        for (int t = 0; t < kw; ++t)
            for (int i = 0; i < n; ++i) {
                const float v = x[r * xrow + i * xs + t], a = out[i];
                out[i] = max ? (v > a ? v : a) : a + v;
            }
    if (div != 1.0f)
        for (int i = 0; i < n; ++i)
            out[i] /= div;
}

#endif /* XG_BASE_H */
