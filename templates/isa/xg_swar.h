/* xg_swar.h: the swar target's hooks (XG_HAVE_<HOOK> for each it defines).
 * Needs, defined by the network's .c before it includes this: xg_word_t, xg_acc_t, XG_WORD_BITS, XG_FB and the other XG_ configuration macros; xg_base.h.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_SWAR_H
#define XG_SWAR_H

/* No popcount instruction on this target: SWAR bit count (add adjacent bit fields, then multiply). */
static inline int xg_popcount(xg_word_t x)
{
#if XG_WORD_BITS == 64
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
#else
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return (int)((x * 0x01010101u) >> 24);
#endif
}
#define XG_POPCOUNT(x) xg_popcount(x)
#if XG_WORD_BITS == 32 && defined(XG_FB) && XG_FB == 4
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#include "xg_scalar.h"
#undef xg_xor_popcount_block
#define XG_HAVE_XOR_POPCOUNT_BLOCK 1
/* The popcount of a ^ b plus that of c ^ d: each word's bits summed to 4-bit fields (at most 4),
 * the two added (at most 8, still one nibble), then to bytes and the bytes by one multiply. The
 * same integer as two xg_popcount calls, in 10 operations per word instead of 13. */
static inline uint32_t xg_popcount_pair(uint32_t a, uint32_t c, uint32_t m1, uint32_t m2, uint32_t m4, uint32_t h)
{
    a = a - ((a >> 1) & m1);
    c = c - ((c >> 1) & m1);
    a = (a & m2) + ((a >> 2) & m2);
    c = (c & m2) + ((c >> 2) & m2);
    a += c;
    a = (a & m4) + ((a >> 4) & m4);
    return (a * h) >> 24;
}
/* Four filters, 32-bit words (cortex-m4): each input word is loaded once for the four filters'
 * sums, and words go two at a time through xg_popcount_pair. Always inlined: called, it spent 52
 * instructions a call saving registers and setting up its masks (a kernel row is 3-6 words).
 * Measured on the emulated M4 (xnorgen measure): see docs/firmware.md. */
#if defined(__GNUC__) || defined(__clang__)
#define XG_SWAR_INLINE static inline __attribute__((always_inline))
#else
#define XG_SWAR_INLINE static inline
#endif
XG_SWAR_INLINE void xg_xor_popcount_block(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                         xg_acc_t *restrict acc)
{
    uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    /* The masks in registers (the empty asm hides their values), so each masking step is one
     * AND with a shifted register operand instead of a shift and an AND with an immediate. */
    uint32_t m1 = 0x55555555u, m2 = 0x33333333u, m4 = 0x0F0F0F0Fu, h = 0x01010101u;
#if defined(__GNUC__) || defined(__clang__)
    __asm__("" : "+r"(m1), "+r"(m2), "+r"(m4), "+r"(h));
#endif
    int j = 0;
    for (; j + 1 < n; j += 2, w += 8) {
        const uint32_t x0 = x[j], x1 = x[j + 1];
        s0 += xg_popcount_pair(x0 ^ w[0], x1 ^ w[4], m1, m2, m4, h);
        s1 += xg_popcount_pair(x0 ^ w[1], x1 ^ w[5], m1, m2, m4, h);
        s2 += xg_popcount_pair(x0 ^ w[2], x1 ^ w[6], m1, m2, m4, h);
        s3 += xg_popcount_pair(x0 ^ w[3], x1 ^ w[7], m1, m2, m4, h);
    }
    if (j < n) {
        const uint32_t x0 = x[j];
        s0 += (uint32_t)xg_popcount(x0 ^ w[0]);
        s1 += (uint32_t)xg_popcount(x0 ^ w[1]);
        s2 += (uint32_t)xg_popcount(x0 ^ w[2]);
        s3 += (uint32_t)xg_popcount(x0 ^ w[3]);
    }
    acc[0] += s0;
    acc[1] += s1;
    acc[2] += s2;
    acc[3] += s3;
}
#else
#include "xg_scalar.h"
#endif

#if XG_FFB == 4 && !XG_FMA && !defined(XG_NO_SIMD)
#define XG_HAVE_MACC_WINDOW 1
/* Float and bwn windows for a core without float SIMD (cortex-m4): GCC's vector extension would
 * lower each 4-filter block to scalar code that round-trips it through the stack (about 8
 * instructions per multiply-add, measured); here outputs go two at a time with their 4 + 4 sums
 * in FPU registers and each tap's 4 weights loaded once for both. Per output and filter the same
 * operations in the same order as xg_common.h's windows: s + x * w (no FMA on this target), taps
 * in channel, row, tap order; bwn adds +x or -x. */
#define XG_WINDOW_TAPS(...)                                                                           \
    for (int c = 0; c < nc; ++c)                                                                      \
        for (int r = 0; r < rows; ++r)                                                                \
            for (int j = 0; j < n; ++j) {                                                             \
                const int tap = ((c * kh + r) * n + j);                                               \
                const float *xp = x + (size_t)c * cs + r * xrow + j;                                  \
                __VA_ARGS__                                                                           \
            }

static inline void xg_macc_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const float *restrict w, int n, int pb, float *restrict acc)
{
    int p = 0;
    for (; p + 1 < pb; p += 2, x += 2 * xs, acc += 8) {
        float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
        XG_WINDOW_TAPS(
            const float w0 = w[tap * 4], w1 = w[tap * 4 + 1], w2 = w[tap * 4 + 2], w3 = w[tap * 4 + 3];
            const float x0 = xp[0], x1 = xp[xs];
            a0 = a0 + x0 * w0; a1 = a1 + x0 * w1; a2 = a2 + x0 * w2; a3 = a3 + x0 * w3;
            b0 = b0 + x1 * w0; b1 = b1 + x1 * w1; b2 = b2 + x1 * w2; b3 = b3 + x1 * w3;)
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3; acc[4] = b0; acc[5] = b1; acc[6] = b2; acc[7] = b3;
    }
    if (p < pb) {
        float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        XG_WINDOW_TAPS(
            const float x0 = xp[0];
            a0 = a0 + x0 * w[tap * 4]; a1 = a1 + x0 * w[tap * 4 + 1];
            a2 = a2 + x0 * w[tap * 4 + 2]; a3 = a3 + x0 * w[tap * 4 + 3];)
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
    }
}

static inline void xg_sign_window_px(const float *restrict x, int xs, int cs, int xrow, int nc, int rows, int kh,
                                     const xg_mask_t *restrict m, int n, int pb, float *restrict acc)
{
    /* Each tap's 4 mask bits become weights of +1.0 or -1.0 once, shared by the pair of outputs:
     * s + x * (+-1.0) is exactly s + (+-x) (the product is exact), so the sums are the portable
     * window's, at a multiply-add per output instead of a test and a conditional negate. */
    int p = 0;
    for (; p + 1 < pb; p += 2, x += 2 * xs, acc += 8) {
        float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
        XG_WINDOW_TAPS(
            const unsigned mk = m[tap];
            const float w0 = (mk & 1u) ? -1.0f : 1.0f, w1 = (mk & 2u) ? -1.0f : 1.0f;
            const float w2 = (mk & 4u) ? -1.0f : 1.0f, w3 = (mk & 8u) ? -1.0f : 1.0f;
            const float x0 = xp[0], x1 = xp[xs];
            a0 = a0 + x0 * w0; a1 = a1 + x0 * w1; a2 = a2 + x0 * w2; a3 = a3 + x0 * w3;
            b0 = b0 + x1 * w0; b1 = b1 + x1 * w1; b2 = b2 + x1 * w2; b3 = b3 + x1 * w3;)
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3; acc[4] = b0; acc[5] = b1; acc[6] = b2; acc[7] = b3;
    }
    if (p < pb) {
        float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        XG_WINDOW_TAPS(
            const float x0 = xp[0];
            const unsigned mk = m[tap];
            a0 += (mk & 1u) ? -x0 : x0; a1 += (mk & 2u) ? -x0 : x0;
            a2 += (mk & 4u) ? -x0 : x0; a3 += (mk & 8u) ? -x0 : x0;)
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
    }
}
#endif

#endif /* XG_SWAR_H */
