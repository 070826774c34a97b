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
static inline uint32_t xg_popcount_pair(uint32_t a, uint32_t c)
{
    a = a - ((a >> 1) & 0x55555555u);
    c = c - ((c >> 1) & 0x55555555u);
    a = (a & 0x33333333u) + ((a >> 2) & 0x33333333u);
    c = (c & 0x33333333u) + ((c >> 2) & 0x33333333u);
    a += c;
    a = (a & 0x0F0F0F0Fu) + ((a >> 4) & 0x0F0F0F0Fu);
    return (a * 0x01010101u) >> 24;
}
/* Four filters, 32-bit words (cortex-m4): each input word is loaded once for the four filters,
 * whose sums stay in registers, and words go two at a time through xg_popcount_pair. Measured on
 * the emulated M4 (xnorgen measure): see docs/firmware.md. */
static inline void xg_xor_popcount_block(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                         xg_acc_t *restrict acc)
{
    uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 1 < n; j += 2, w += 8) {
        const uint32_t x0 = x[j], x1 = x[j + 1];
        s0 += xg_popcount_pair(x0 ^ w[0], x1 ^ w[4]);
        s1 += xg_popcount_pair(x0 ^ w[1], x1 ^ w[5]);
        s2 += xg_popcount_pair(x0 ^ w[2], x1 ^ w[6]);
        s3 += xg_popcount_pair(x0 ^ w[3], x1 ^ w[7]);
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

#endif /* XG_SWAR_H */
