"""The exception and warning types every layer raises; the command line turns a
`RepaintError` into one line and exit code 2."""


class RepaintError(Exception):
    """A problem the user can fix: the message names the file or key and what to do."""


class RepaintWarning(UserWarning):
    """Something was ignored or adjusted; the run goes on."""
