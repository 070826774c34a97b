"""Names: what a net.yaml may call things (contract section 1), and the single sanitizing
helper every generated C symbol goes through."""
import re

from xnorgen.errors import XnorgenError, show

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic "
    "_Noreturn _Static_assert _Thread_local alignas alignof bool constexpr false nullptr static_assert "
    "thread_local true typeof typeof_unqual".split())

#: Headers a generated file, its Makefile or the cffi build may include: a network whose name
#: (so its <name>.h, found first through -I) equals one of them, in any case, would shadow it.
SYSTEM_HEADERS = frozenset(
    "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign "
    "stdarg stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath "
    "threads time uchar wchar wctype unistd features alloca malloc memory strings endian "
    "immintrin x86intrin xmmintrin emmintrin pmmintrin tmmintrin smmintrin nmmintrin wmmintrin "
    "avxintrin avx2intrin avx512fintrin popcntintrin arm_neon arm_acle arm_fp16 arm_bf16 cmsis_gcc "
    "python pyconfig pyport pymacro pymath pytime object structmember".split())

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
NET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}\Z")


def check_net_name(name, where: str) -> None:
    """A network name is a C identifier of at most 64 characters that cannot clash with the C
    language, a header or the library's own `xg_` helpers; raise XnorgenError otherwise."""
    if not isinstance(name, str) or not NET_NAME.match(name):
        raise XnorgenError(where, f"must match [A-Za-z_][A-Za-z0-9_]{{0,63}}, got {show(name)}")
    if name in C_KEYWORDS:
        raise XnorgenError(where, f"{name!r} is a C keyword")
    if name.lower() in SYSTEM_HEADERS:
        raise XnorgenError(where, f"{name!r} would shadow the system header <{name.lower()}.h>")
    if name.startswith("__") or re.match(r"_[A-Z]", name):
        raise XnorgenError(where, f"{name!r} is reserved by the C standard (__ or _ and a capital)")
    if name.lower() == "xg" or name.lower().startswith("xg_"):
        raise XnorgenError(where, f"{name!r} is reserved for the generated library's helpers (xg_)")


def check_layer_name(name, where: str) -> None:
    """A layer name matches [A-Za-z_][A-Za-z0-9_.-]{0,127} and is not `input` (the network's input)."""
    if not isinstance(name, str) or not LAYER_NAME.match(name):
        raise XnorgenError(where, f"layer name must match [A-Za-z_][A-Za-z0-9_.-]{{0,127}}, got {show(name)}")
    if name == "input":
        raise XnorgenError(where, "'input' is reserved for the network input")


def is_c_identifier(s: str) -> bool:
    return bool(_IDENT.match(s)) and s not in C_KEYWORDS


def c_ident(s: str) -> str:
    """Map any string to a valid C identifier (not unique by itself: see unique_c_idents)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", s)
    if not out or out[0].isdigit():
        out = "_" + out
    if out in C_KEYWORDS:
        out += "_"
    return out


def unique_c_idents(names):
    """Sanitize each name; disambiguate collisions ("a-b" and "a_b") with a numeric suffix."""
    seen, result = set(), {}
    for n in names:
        base = c_ident(n)
        cand, i = base, 1
        while cand in seen:
            cand, i = f"{base}_{i}", i + 1
        seen.add(cand)
        result[n] = cand
    return result


# ---- generated C symbols: built here only ----------------------------------------------------
# Kernels are `static` in <net>.c, constants `extern const` in <net>_weights.h, which <net>.c
# includes, so the two must never meet: kernels are <net>_layer_<ident> and <net>_binarize_<ident>,
# constants <net>_w_<ident>_<suffix> with suffixes that hold no "_" (lowering.Const), so
# distinct (ident, suffix) pairs give distinct names and none starts like a kernel.

def infer_symbol(net_name: str) -> str:
    """The library's one entry point, int <net>_infer(const float *, float *, void *)."""
    return f"{net_name}_infer"


def kernel_symbol(net_name: str, ident: str) -> str:
    return f"{net_name}_layer_{ident}"


def stage_name(ident: str) -> str:
    """A binarize stage of a layer's output (ident) or of the network input ("input"), as the
    simulator's reports and the kernels' comments name it."""
    return f"binarize_{ident}"


def stage_symbol(net_name: str, ident: str) -> str:
    """The C function of a standalone binarize stage."""
    return f"{net_name}_{stage_name(ident)}"


def const_prefix(net_name: str, ident: str) -> str:
    """The constants of one layer are <const_prefix>_<suffix>."""
    return f"{net_name}_w_{ident}"


def arena_symbol(buffer_ident: str) -> str:
    """The name of an arena buffer's byte offset in <net>.c (an enum constant). XG_AT_ is used
    for nothing else, and the library's own XG_ macros are fixed words, so none can collide."""
    return f"XG_AT_{buffer_ident}"
