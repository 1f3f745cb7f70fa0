"""The one exception type that reaches users: a one-line message saying what is wrong and how to fix it."""


class SecaError(Exception):
    """A problem with the user's input or environment.

    The command line prints ``error: <message>`` and exits with status 2 instead of a traceback, so the
    message must stand on its own: what is wrong, and what to do about it.
    """
