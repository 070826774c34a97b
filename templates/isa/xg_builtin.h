/* xg_builtin.h: the builtin target's hooks (XG_HAVE_<HOOK> for each it defines).
 * Needs, defined by the network's .c before it includes this: xg_word_t, xg_acc_t, XG_WORD_BITS, XG_FB and the other XG_ configuration macros; xg_base.h.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_BUILTIN_H
#define XG_BUILTIN_H

/* The target has a popcount instruction; the compiler emits it for the builtin. */
#if XG_WORD_BITS == 64
#define XG_POPCOUNT(x) __builtin_popcountll(x)
#else
#define XG_POPCOUNT(x) __builtin_popcount(x)
#endif
#include "xg_scalar.h"

#endif /* XG_BUILTIN_H */
