"""``python3 -m serving.estimate``: will an instance of ``--memory`` hold this model?

``deploy.sh`` runs it before deploying, on the deployer's machine, with the model file it
ships or uploads: it needs only the standard library (importing :mod:`serving` loads
nothing else). Prints one line, the estimate (:func:`serving.memory.estimate`); exits 0
when the model plus one request at the body limit fits in ``--memory``, 3 when it does not
(the line says so and suggests a size), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys

from serving.memory import estimate, mib, suggested_memory
from serving.settings import Settings

DOES_NOT_FIT = 3  # deploy.sh refuses the deployment on this status


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, print the estimate, return the exit status."""
    parser = argparse.ArgumentParser(prog="python3 -m serving.estimate", description=__doc__)
    parser.add_argument("--model-bytes", type=int, required=True, help="size of the .tflite")
    parser.add_argument("--memory", type=int, required=True, help="the instance's memory, bytes")
    parser.add_argument("--workers", type=int, required=True, help="gunicorn worker processes")
    parser.add_argument(
        "--pool-per-worker", type=int, required=True, help="interpreters per worker"
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=Settings.max_request_bytes,
        help="MAX_REQUEST_BYTES (default: the server's own default)",
    )
    parser.add_argument("--downloaded", action="store_true", help="the model comes from gs://")
    args = parser.parse_args(argv)
    found = estimate(
        args.model_bytes,
        workers=args.workers,
        pool_per_worker=args.pool_per_worker,
        max_request_bytes=args.max_request_bytes,
        downloaded=args.downloaded,
    )
    if found.total <= args.memory:
        print(f"{found.describe()} of {mib(args.memory)}")
        return 0
    print(
        f"{mib(args.memory)} cannot hold the model plus one request at the body limit: "
        f"{found.describe()}; use --memory {suggested_memory(found.total)} or more, or a "
        "smaller body limit (--env MAX_REQUEST_BYTES=...)"
    )
    return DOES_NOT_FIT


if __name__ == "__main__":
    sys.exit(main())
