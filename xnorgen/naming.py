"""C identifiers: the single sanitizing helper every generated symbol goes through."""
import re

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary".split())

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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
