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
#include "xg_scalar.h"

#endif /* XG_SWAR_H */
