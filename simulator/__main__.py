"""``python -m simulator ...``: the same options as ``manage.py simulate_pos``."""

from __future__ import annotations

import sys

from simulator.cli import http_logs_quiet, options_from, parser_build
from simulator.runner import OptionError, SimulationAborted, run


def main(argv: list[str] | None = None) -> int:
    parser = parser_build()
    options = options_from(parser.parse_args(argv))
    http_logs_quiet()
    try:
        summary = run(options)
    except OptionError as exc:
        parser.error(str(exc))
    except SimulationAborted as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
