"""How a user mistake ends a command: a short message on stderr and exit status 2, no traceback."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from trainer.config import ConfigError
from trainer.config.problems import render
from trainer.errors import EXIT_USER_ERROR, UserError

USER_ERRORS = (ConfigError, UserError)


def message(err: ConfigError | UserError) -> str:
    """The short message of a user mistake (what the terminal shows and a failed run's log ends with)."""
    return render(err.problems) if isinstance(err, ConfigError) else err.render()


def report_and_exit(err: ConfigError | UserError) -> NoReturn:
    """Print a user mistake as a short message and exit 2; TRAINER_DEBUG=1 shows the traceback too."""
    if os.environ.get("TRAINER_DEBUG"):
        raise err
    print(message(err), file=sys.stderr)
    print("  (set TRAINER_DEBUG=1 to see the traceback)", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)
