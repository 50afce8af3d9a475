"""Command line: ``python -m evovlm <command> ...``.

Each command lives in its module as ``main(argv)``; imports are lazy so that
``python -m evovlm render`` does not pay for torch.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "render": ("evovlm.render", "Render SVG/Python programs from a Parquet file to images"),
    "build-tiny": ("evovlm.tiny", "Build the embedded tiny Qwen-VL model into a folder"),
    "validate-config": ("evovlm.experiment", "Validate a config file against the schema"),
    "compare": (
        "evovlm.compare",
        "Per-round table of finished runs side by side (trained, control)",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        from evovlm import __version__

        print(f"evovlm {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: evovlm <command> [args]   (or python -m evovlm; evovlm --version)\n")
        print("commands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:18s} {help_text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
