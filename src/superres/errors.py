"""The one exception family for user-facing failures: the CLI prints its message as one line."""


class SuperresError(Exception):
    """A failure the user can act on (bad file, bad option); its message is one line."""
