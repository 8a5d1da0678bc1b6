"""`trainer schema`: print the configuration schema, as JSON Schema or as a Markdown reference.

Why a separate entry point: the Pydantic models in trainer/config are the single source of truth for
every config key, so the reference (docs/configuration.md) and the JSON Schema (for editors, linters and
other tools) are generated from them instead of kept by hand. It imports only trainer.config (pydantic and
the standard library), so it runs in a fraction of a second without torch, Lightning or transformers.

    trainer schema                                  # JSON Schema of TrainConfig, on stdout
    trainer schema --markdown                       # the Markdown reference, on stdout
    trainer schema --write docs/configuration.md    # regenerate the checked-in reference
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.config.reference import json_schema, render_markdown


def main(argv: list[str] | None = None) -> int:
    """Exit status 0; argparse handles --help and bad flags (exit 2)."""
    parser = argparse.ArgumentParser(
        prog="trainer schema",
        description="Print the config schema (JSON Schema by default), or write the Markdown reference.",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print the Markdown reference instead")
    out.add_argument("--write", metavar="PATH", type=Path, help="write the Markdown reference to PATH")
    args = parser.parse_args(argv)
    if args.write is not None:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(render_markdown(), encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    elif args.markdown:
        sys.stdout.write(render_markdown())
    else:
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return 0


if __name__ == "__main__":  # python -m trainer.commands.schema: the same
    sys.exit(main())
