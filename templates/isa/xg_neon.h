/* xg_neon.h: the neon target's hooks (XG_HAVE_<HOOK> for each it defines).
 * Needs, defined by the network's .c before it includes this: xg_word_t, xg_acc_t, XG_WORD_BITS, XG_FB and the other XG_ configuration macros; xg_base.h.
 * Fixed C, copied by xnorgen into every output directory that uses it (templates/isa/). */
#ifndef XG_NEON_H
#define XG_NEON_H

/* AArch64 NEON: two 64-bit words per 128-bit step: eor, cnt (bit count of each byte) and
 * uadalp (pairwise add-accumulate into 16-bit lanes), flushed before a 16-bit lane can
 * overflow (each step adds at most 16 to a lane: 2048 steps).
 * xg_xor_popcount_block (XG_FB even): one input word duplicated against two interleaved
 * filter words per register; uaddlp widens the lanes back to one 64-bit count per filter.
 * Built without NEON, or with -DXG_NO_SIMD, the portable C is used. */
#define XG_POPCOUNT(x) __builtin_popcountll(x)
#if defined(__ARM_NEON) && defined(__aarch64__) && !defined(XG_NO_SIMD)
#include <arm_neon.h>
#define XG_SIMD "neon-cnt"
/* float taps: one fmla per 4 filters (the float conv/dense hot loop, XG_FFB = 4) */
#define XG_VFMA(s, x, w) ((xg_fvec)vfmaq_n_f32((float32x4_t)(s), (float32x4_t)(w), (x)))
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#include "xg_scalar.h"
#undef xg_xor_popcount_block
#if defined(XG_FB) && XG_FB % 2 == 0
#define XG_HAVE_XOR_POPCOUNT_BLOCK 1
static inline void xg_xor_popcount_block(const xg_word_t *restrict x, const xg_word_t *restrict w, int n,
                                         xg_acc_t *restrict acc)
{
    typedef char xg_acc_must_be_64_bit[sizeof(xg_acc_t) == 8 ? 1 : -1];
    (void)sizeof(xg_acc_must_be_64_bit);
    for (int b0 = 0; b0 < XG_FB; b0 += 2) {
        uint64x2_t s = vdupq_n_u64(0);
        for (int j0 = 0; j0 < n; j0 += 2048) {
            const int j1 = n - j0 > 2048 ? j0 + 2048 : n;
            uint16x8_t h = vdupq_n_u16(0);
            for (int j = j0; j < j1; ++j) {
                const uint64x2_t wv = vld1q_u64(w + (size_t)j * XG_FB + b0);
                h = vpadalq_u8(h, vcntq_u8(vreinterpretq_u8_u64(veorq_u64(vdupq_n_u64(x[j]), wv))));
            }
            s = vaddq_u64(s, vpaddlq_u32(vpaddlq_u16(h)));
        }
        vst1q_u64(acc + b0, vaddq_u64(vld1q_u64(acc + b0), s));
    }
}
#elif defined(XG_FB)
#define xg_xor_popcount_block xg_xor_popcount_block_portable
#endif
#else
#define XG_SIMD "portable"
#include "xg_scalar.h"
#endif

#endif /* XG_NEON_H */
