"""The one exception type the command line turns into a one-line message and exit code 2."""


class RepaintError(Exception):
    """A problem the user can fix: the message names the file or key and what to do."""
