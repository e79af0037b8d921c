"""``python3 -m serving.estimate``: will an instance of ``--memory`` hold this model?

``deploy.sh`` runs it before deploying, on the deployer's machine, with the model file it
ships or uploads, or with the model repository it serves: it needs only the standard
library (importing :mod:`serving` and :mod:`serving.repository`'s listing loads nothing
else). Prints one line, the estimate (:func:`serving.memory.estimate`); exits 0 when the
model plus one request at the body limit fits in ``--memory``, 3 when it does not (the
line says so and suggests a size), 4 when a repository cannot be served as it is (the
line says why), 2 on bad arguments.

A repository counts its largest version, downloaded from Cloud Storage, held by every
worker: each worker loads its own versions within its share of the instance, the
runtime's own rule (:func:`serving.memory.repository_shares`). ``--repository DIR`` lists
a local folder with the
function's own listing and ``models.json`` rules (each ignored entry is named on stderr),
``--repository-listing FILE`` reads what ``gcloud storage ls -l`` printed for a ``gs://``
repository's ``*/*/model.tflite`` objects.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ServingError
from serving.memory import Estimate, estimate, mib, repository_shares, suggested_memory
from serving.repository.catalog import build
from serving.repository.listing import MODEL_FILE, Ignored, list_repository
from serving.repository.names import InvalidSegment, Segment, check
from serving.settings import Settings

DOES_NOT_FIT = 3  # deploy.sh refuses the deployment on this status
CANNOT_SERVE = 4  # the repository's layout or models.json is broken: refused too
# A line of `gcloud storage ls -l`: size, creation time, URL (then a "TOTAL: ..." line).
_LS_LINE = re.compile(r"^\s*(\d+)\s+\S+\s+(gs://\S.*)$")


class CannotServe(ValueError):
    """The repository cannot be served as it is; the message says why."""


@dataclass(frozen=True)
class Largest:
    """A repository's largest version: its name, version and size."""

    name: str
    version: str
    size_bytes: int

    def describe(self) -> str:
        return f"the largest version ({self.name}/{self.version}, {mib(self.size_bytes)})"


def largest_local_version(folder: str) -> tuple[Largest, tuple[Ignored, ...]]:
    """List ``folder`` as the function would; its largest version and the ignored entries.

    Raises:
        CannotServe: not a folder, no version at all, or a ``models.json`` the function
            would answer with an error.
    """
    try:
        listing = list_repository(folder, cache_dir=Path(tempfile.gettempdir()), timeout=60)
    except ServingError as e:
        raise CannotServe(str(e)) from e
    catalog = build(listing)
    if catalog.error is not None:
        raise CannotServe(str(catalog.error))
    for entry in catalog.models.values():
        if entry.error is not None:
            raise CannotServe(str(entry.error))
    versions = [
        Largest(name, str(version), source.size_bytes)
        for name, entry in catalog.models.items()
        for version, source in entry.sources.items()
    ]
    if not versions:
        raise CannotServe(f"no model in {folder}: expected <name>/<version>/{MODEL_FILE} in it")
    return max(versions, key=lambda v: v.size_bytes), listing.ignored


def largest_listed_version(listing: str, location: str) -> tuple[Largest, tuple[Ignored, ...]]:
    """The largest version in ``gcloud storage ls -l`` output of ``location``'s objects.

    Raises:
        CannotServe: no ``<name>/<version>/model.tflite`` object under ``location``.
    """
    base = location.rstrip("/") + "/"
    versions: list[Largest] = []
    ignored: list[Ignored] = []
    for line in listing.splitlines():
        found = _LS_LINE.match(line)
        if found is None or not found.group(2).startswith(base):
            continue
        size, uri = int(found.group(1)), found.group(2)
        parts = uri[len(base) :].split("/")
        if len(parts) != 3 or parts[2] != MODEL_FILE:
            ignored.append(Ignored(uri, f"not <name>/<version>/{MODEL_FILE}"))
            continue
        try:
            check(Segment.MODEL, parts[0])
            check(Segment.VERSION, parts[1])
        except InvalidSegment as e:
            ignored.append(Ignored(uri, str(e)))
            continue
        versions.append(Largest(parts[0], parts[1], size))
    if not versions:
        raise CannotServe(f"no model in {location}: expected <name>/<version>/{MODEL_FILE} in it")
    return max(versions, key=lambda v: v.size_bytes), tuple(ignored)


def repository_estimate(
    size: int, *, memory: int, workers: int, pool_per_worker: int, max_request_bytes: int
) -> tuple[Estimate, bool]:
    """An instance serving a repository whose largest version has ``size`` bytes, and
    whether that version fits in one worker's share for models (as the runtime decides:
    :func:`serving.memory.repository_shares`). The estimate counts it in every worker,
    each with its share of the request budget."""
    one = estimate(
        size,
        workers=1,
        pool_per_worker=pool_per_worker,
        max_request_bytes=max_request_bytes,
        downloaded=True,
    )
    shares = repository_shares(memory, workers, max_request_bytes)
    runtime = estimate(
        size,
        workers=workers,
        pool_per_worker=pool_per_worker,
        max_request_bytes=max_request_bytes,
        downloaded=True,
    ).runtime_bytes
    found = Estimate(
        runtime_bytes=runtime,
        weights_bytes=workers * one.weights_bytes,
        download_bytes=workers * one.download_bytes,
        request_bytes=workers * shares.requests,
    )
    footprint = one.weights_bytes + one.download_bytes
    return found, shares.models is None or footprint <= shares.models


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, print the estimate, return the exit status."""
    parser = argparse.ArgumentParser(prog="python3 -m serving.estimate", description=__doc__)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model-bytes", type=int, help="size of the .tflite")
    model.add_argument("--repository", metavar="DIR", help="a local model repository")
    model.add_argument(
        "--repository-listing",
        metavar="FILE",
        help="`gcloud storage ls -l` output for a gs:// repository, '-' for stdin "
        "(with --repository-uri)",
    )
    parser.add_argument("--repository-uri", metavar="GS_URI", help="the listed repository")
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
    if args.repository_listing is not None and args.repository_uri is None:
        parser.error("--repository-listing needs --repository-uri")
    what, model_bytes, downloaded = "the model", args.model_bytes, args.downloaded
    if args.model_bytes is None:
        try:
            if args.repository is not None:
                largest, ignored = largest_local_version(args.repository)
            else:
                listed = args.repository_listing
                text = sys.stdin.read() if listed == "-" else Path(listed).read_text()
                largest, ignored = largest_listed_version(text, args.repository_uri)
        except CannotServe as e:
            print(e)
            return CANNOT_SERVE
        for entry in ignored:
            print(f"the function ignores {entry.entry} ({entry.why})", file=sys.stderr)
        what = largest.describe()
        found, fits = repository_estimate(
            largest.size_bytes,
            memory=args.memory,
            workers=args.workers,
            pool_per_worker=args.pool_per_worker,
            max_request_bytes=args.max_request_bytes,
        )
    else:
        found = estimate(
            model_bytes,
            workers=args.workers,
            pool_per_worker=args.pool_per_worker,
            max_request_bytes=args.max_request_bytes,
            downloaded=downloaded,
        )
        fits = found.total <= args.memory
    prefix = "" if args.model_bytes is not None else f"{what}: "
    if fits:
        print(f"{prefix}{found.describe()} of {mib(args.memory)}")
        return 0
    print(
        f"{mib(args.memory)} cannot hold {what} plus one request at the body limit: "
        f"{found.describe()}; use --memory {suggested_memory(found.total)} or more, or a "
        "smaller body limit (--env MAX_REQUEST_BYTES=...)"
    )
    return DOES_NOT_FIT


if __name__ == "__main__":
    sys.exit(main())
