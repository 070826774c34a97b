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
