"""The ``kiln`` command line: a table of small typed functions.

The YAML-driven ``kiln train`` arrives with the lifecycle work; until then the command
offers ``kiln version`` and ``kiln seed`` (the seed article's Keras example).
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

__all__ = ["main"]


def cmd_version(args) -> int:
    """Print kiln's and torch's versions."""
    import torch

    import kiln
    print(f"kiln {kiln.__version__} (torch {torch.__version__})")
    return 0


def cmd_seed(args) -> int:
    """Run the seed article's §5.2 Keras example with kiln."""
    script = Path(__file__).resolve().parent.parent / "examples" / "seed_keras_example.py"
    if not script.exists():
        print(f"error: {script} not found (run from a source checkout)", file=sys.stderr)
        return 1
    runpy.run_path(str(script), run_name="__main__")
    return 0


COMMANDS = {"version": cmd_version, "seed": cmd_seed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kiln", description="kiln: Keras-familiar deep learning on PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in COMMANDS.items():
        sub.add_parser(name, help=fn.__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    return COMMANDS[args.command](args)
