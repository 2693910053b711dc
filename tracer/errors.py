"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class TracerError(Exception):
    """A user-facing error: bad input, missing tool or device. The message is one line that says what to do."""
