"""``python -m serving [MODEL] [--host HOST] [--port PORT]``: serve a model from any folder.

The function Cloud Functions runs (:mod:`serving.function.main`) under functions-framework,
as ``make serve`` does from the checkout, but from wherever it is called: ``MODEL`` (else
``MODEL_PATH``) is resolved against the caller's folder, which also works for a package
installed with ``pip install .``. Every other setting is read from the environment as
deployed (``docs/serving.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

import serving

FUNCTION = Path(__file__).resolve().parent / "function" / "main.py"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = _Parser(
        prog="python -m serving",
        description="Serve a TFLite model on TF Serving REST and the Open Inference Protocol "
        "(the Cloud Function, run locally by functions-framework).",
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="a .tflite file or gs://bucket/object (default: $MODEL_PATH, else the bundled model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT") or 8080), help="default: 8080"
    )
    return parser


def command(args: argparse.Namespace, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The functions-framework command line and its environment for ``args``."""
    env = dict(environ)
    model = args.model or env.get("MODEL_PATH")
    if model and not model.startswith("gs://"):
        env["MODEL_PATH"] = str(Path(model).resolve())  # the caller's folder, not the server's
    # The function imports ``serving``: wherever this one came from (site-packages, a checkout).
    root = str(Path(serving.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "functions_framework", "--target", "predict"]
    argv += ["--source", str(FUNCTION), "--host", args.host, "--port", str(args.port)]
    return argv, env


def main(argv: list[str] | None = None) -> NoReturn:
    """Parse, then become the server (``exec``: signals and exit status are the server's)."""
    args = build_parser().parse_args(argv)
    program, env = command(args, dict(os.environ))
    print(f"python -m serving: serving on http://{args.host}:{args.port}", file=sys.stderr)
    os.execve(program[0], program, env)


if __name__ == "__main__":
    main()
