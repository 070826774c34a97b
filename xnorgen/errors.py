"""The one error type users see.

Every problem with a user's input is raised as XnorgenError(where, what); the
CLI prints it as ``error: <where>: <what>`` and exits with status 2.
"""


class XnorgenError(Exception):
    """A user-facing error: ``where`` names the file/layer, ``what`` the problem."""

    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")
        self.where = where
        self.what = what


def show(value, limit: int = 60) -> str:
    """repr() of a user's value for an error message: at most `limit` characters, so a huge
    or deeply shared structure (an alias bomb) is never expanded into a message."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 16:
        return f"<{type(value).__name__} of {len(value)} items>"
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def one_line(text: str) -> str:
    """text with every control or invisible formatting character (newline, right-to-left
    override, ...) escaped, so a user's string cannot break or disguise an error line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in text)
