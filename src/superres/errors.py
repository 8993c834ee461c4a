"""The one exception family for user-facing failures: the CLI prints its message as one line."""

__all__ = ["SuperresError", "printable"]


class SuperresError(Exception):
    """A failure the user can act on (bad file, bad option); its message is one line."""


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on rather than show (newlines, escape
    sequences, bidi overrides) written as its Python escape, so that a file name printed in a
    message can neither forge another line nor drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
