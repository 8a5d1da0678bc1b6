"""The one exception type for user mistakes.

A `UserError` is printed as a short message and exits with status 2, never with a traceback: it means
"your config or data is wrong, here is how to fix it", not "the program broke". Standard library only,
so the config layer can raise it before anything heavy is imported.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, cut to `limit`: enough to search for, short enough for
    a one-line error about a library failure."""
    lines = str(err).strip().splitlines()
    return lines[0][:limit] if lines else ""


class UserError(Exception):
    """A problem the user can fix: bad config value, missing file, unreachable hub id."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple:
        # Raised in a data worker process and re-raised here: keep the hint across the pickle.
        return (self.__class__, (self.message,), {"hint": self.hint})

    def render(self) -> str:
        lines = ["trainer: error: " + self.message]
        if self.hint:
            lines.append("  fix: " + self.hint)
        return "\n".join(lines)
