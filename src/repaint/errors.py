"""The exception and warning types every layer raises; the command line turns a
`RepaintError` into one line and exit code 2, the web app into the HTTP status of its
kind (400; `TooLarge` 413, `NotFound` 404, `Gone` 410, `Busy` 503)."""

from __future__ import annotations

import re
from collections.abc import Callable


class RepaintError(Exception):
    """A problem the user can fix: the message names the file or key and what to do."""


class RepaintWarning(UserWarning):
    """Something was ignored or adjusted; the run goes on."""


class FieldError(RepaintError):
    """A bad value of one request field. Each door names fields its own way (a flag on the
    command line, `options.x` in the web form, the field name in Python), so the problem
    refers to fields as `{name}` and `worded` fills them in; `str()` is the Python wording."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(self.worded(lambda name: name))

    def worded(self, name_of: Callable[[str], str]) -> str:
        problem = re.sub(r"\{([A-Za-z_.]+)\}", lambda match: name_of(match[1]), self.problem)
        return f"{name_of(self.field)}: {problem}"


class TooLarge(RepaintError):
    """An input over a size limit (HTTP 413)."""


class NotFound(RepaintError):
    """A thing asked for by name or id that does not exist (HTTP 404)."""


class Gone(RepaintError):
    """A thing that existed and was evicted (HTTP 410)."""


class Busy(RepaintError):
    """Too much work is waiting (HTTP 503)."""
