"""``python -m batch --model MODEL --input INPUT --output OUTPUT [options] [Beam options]``.

Everything is checked before the pipeline starts: the model is fetched, verified and
loaded as the function loads it, the signature must exist, the input pattern must match
files (JSONL, or pictures for a model with a picture input) and the output must hold no
earlier results. A refusal is one line on stderr and exit code 2. Then the pipeline runs
to the end and one line gives the counts and the throughput.

Options that are not this command's go to Beam (``--direct_num_workers``, ``--project``,
``--region``, ``--temp_location``, ...); an option Beam does not know either is refused.
Settings the function reads from its environment apply here too: ``LABELS_PATH``,
``IMAGE_MEAN``/``IMAGE_STD``, ``MAX_IMAGE_PIXELS``, ``MAX_BATCH_SIZE``,
``SERVING_BACKEND``, ``MODEL_CACHE_DIR``, ``GCS_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    TestOptions,
    WorkerOptions,
)
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.runners import create_runner

from batch import pipeline, progress, staging, storage
from batch.pipeline import Job
from batch.scoring import InputKind, Scorer, picture_format
from serving.errors import ServingError
from serving.model import Model
from serving.runtime import Runtime
from serving.settings import Settings
from serving.storage.gcs_uri import GS_SCHEME, URI_SCHEME

PROG = "python -m batch"


class Runner(enum.Enum):
    """The runners this command supports."""

    DIRECT = "DirectRunner"
    DATAFLOW = "DataflowRunner"


class Refused(Exception):
    """A reason not to start: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise Refused(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Score JSONL instances or picture files with a TFLite model on Apache Beam.",
        epilog="Other options are Beam pipeline options (e.g. --direct_num_workers, "
        "--project, --region, --temp_location).",
    )
    parser.add_argument("--model", required=True, help="a local .tflite or gs://bucket/object")
    parser.add_argument(
        "--input", required=True, help="JSONL files or picture files: a path or glob, or gs://"
    )
    parser.add_argument(
        "--output", required=True, help="a folder or gs:// prefix for predictions-*, errors-*"
    )
    parser.add_argument("--signature", help="the signature to run (default: the model's)")
    parser.add_argument(
        "--runner",
        default=Runner.DIRECT.value,
        choices=[r.value for r in Runner],
        help="default: DirectRunner",
    )
    return parser


def prepare(argv: Sequence[str] | None = None) -> Job:
    """Parse and check everything; the job to run, or :class:`Refused` naming the problem."""
    args, beam_args = _parser().parse_known_args(argv)
    runner = Runner(args.runner)
    options = PipelineOptions([*beam_args, f"--runner={runner.value}"])
    known = options.get_all_options(retain_unknown_options=False)
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(known)
    if unknown:
        raise Refused(f"unknown option --{sorted(unknown)[0]} (neither this command's nor Beam's)")
    try:
        settings = Settings.from_env()
    except ServingError as e:
        raise Refused(str(e)) from e
    # One process scores with all its cores through threads, each on its own interpreter
    # (their invoke releases the GIL); the compiled engine, which the function prefers for
    # one shared copy of the weights, runs one inference per process at a time. So the
    # interpreter engine, unless SERVING_ENGINE says otherwise.
    settings = dataclasses.replace(
        settings, model_path=args.model, engine=settings.engine or "interpreter"
    )
    storage.connect_emulator_anonymously()

    if runner is Runner.DATAFLOW:
        _check_dataflow(args, settings, options.view_as(GoogleCloudOptions))
        setup = options.view_as(SetupOptions)
        # A custom container brings its own packages; otherwise workers install these.
        if (
            setup.requirements_file is None
            and not options.view_as(WorkerOptions).sdk_container_image
        ):
            setup.requirements_file = str(staging.WORKER_REQUIREMENTS)
        if setup.setup_file is None:
            setup.setup_file = str(staging.write_setup())
    else:
        # The machine's cores (INTERPRETER_POOL_SIZE: usable CPUs), as threads of this
        # process sharing one model: its interpreter pool runs them in parallel.
        direct = options.view_as(DirectOptions)
        given = _given(beam_args)
        if "direct_num_workers" not in given:
            direct.direct_num_workers = settings.pool_size
        if "direct_running_mode" not in given:
            direct.direct_running_mode = "multi_threading"

    # Beam's own checks of its options (what beam.Pipeline would raise), as a refusal.
    errors = PipelineOptionsValidator(options, create_runner(runner.value)).validate()
    if errors:
        raise Refused(" ".join(errors[0].split()))
    try:
        model = Runtime(settings).load().model
    except ServingError as e:
        raise Refused(f"--model {args.model}: {e}") from e
    try:
        kind = _input_kind(args.input)
        _check_signature(model, kind, args.signature, args.input)
    finally:
        model.close()
    _check_output(args.output)
    return pipeline.Job(settings, kind, args.input, args.output, args.signature, options)


def _check_signature(model: Model, kind: InputKind, signature: str | None, pattern: str) -> None:
    """The signature exists, and takes one picture input when the input is pictures."""
    try:
        chosen = Scorer(model, kind, signature).signature
    except ServingError as e:
        raise Refused(str(e)) from e
    specs = chosen.inputs
    if kind is InputKind.PICTURES and (
        len(specs) != 1 or model.picture_input(chosen, specs[0]) is None
    ):
        listed = ", ".join(f"{s.name} {list(s.shape)}" for s in specs)
        raise Refused(
            f"--input {pattern} matches pictures, but signature {chosen.key!r} takes "
            f"{listed}, not one picture input shaped [batch, height, width, 1|3]"
        )


def _given(beam_args: Sequence[str]) -> set[str]:
    """The option names given among ``beam_args`` (``--name`` or ``--name=value``)."""
    return {a[2:].split("=", 1)[0] for a in beam_args if a.startswith("--")}


def _is_gs(uri: str) -> bool:
    found = URI_SCHEME.match(uri)
    return found is not None and found.group(1).lower() == GS_SCHEME


def _check_dataflow(
    args: argparse.Namespace, settings: Settings, cloud: GoogleCloudOptions
) -> None:
    """Dataflow workers cannot read this machine's files; the job needs its project."""
    for flag, value in (
        ("--model", args.model),
        ("--input", args.input),
        ("--output", args.output),
    ):
        if not _is_gs(value):
            raise Refused(f"{flag} {value}: DataflowRunner workers read and write gs:// only")
    if settings.labels_path and not _is_gs(settings.labels_path):
        raise Refused(f"LABELS_PATH={settings.labels_path}: DataflowRunner workers need gs://")
    missing = [
        flag
        for flag, value in (
            ("--project", cloud.project),
            ("--region", cloud.region),
            ("--temp_location", cloud.temp_location),
        )
        if not value
    ]
    if missing:
        raise Refused(f"DataflowRunner needs {', '.join(missing)}")
    if not _is_gs(cloud.temp_location):
        raise Refused(f"--temp_location {cloud.temp_location}: DataflowRunner needs gs://")


def _matched(pattern: str) -> list[str]:
    try:
        (found,) = FileSystems.match([pattern])
    except BeamIOError as e:
        causes = "; ".join(str(c) for c in e.exception_details.values()) or str(e)
        raise Refused(f"--input {pattern}: {causes}") from e
    return [m.path for m in found.metadata_list]


def _input_kind(pattern: str) -> InputKind:
    """JSONL unless every file the pattern matches is a picture; 2 for none or a mix."""
    paths = _matched(pattern)
    if not paths:
        raise Refused(f"--input {pattern}: matches no file")
    pictures = [p for p in paths if picture_format(p) is not None]
    if not pictures:
        return InputKind.JSONL
    if len(pictures) != len(paths):
        other = next(p for p in paths if picture_format(p) is None)
        raise Refused(
            f"--input {pattern}: matches pictures ({pictures[0]}) and other files ({other}): "
            "give a pattern matching only JSONL or only pictures"
        )
    return InputKind.PICTURES


def _check_output(output: str) -> None:
    """Refuse an output that is a file or already holds results (they would mix)."""
    if not _is_gs(output) and os.path.isfile(output):
        raise Refused(f"--output {output}: is a file, not a folder")
    if _is_gs(output):
        _check_bucket(output)
    earlier = [
        path
        for name in (pipeline.PREDICTIONS, pipeline.ERRORS)
        for path in _matched_quietly(FileSystems.join(output, f"{name}-*{pipeline.SUFFIX}"))
    ]
    if earlier:
        raise Refused(
            f"--output {output}: already holds results ({earlier[0]}): "
            "give an empty folder or remove them"
        )


def _check_bucket(output: str) -> None:
    """Refuse a gs:// output whose bucket does not exist (Beam would fail at the very end)."""
    from apache_beam.io.gcp import gcsio
    from google.api_core import exceptions

    bucket, _ = gcsio.parse_gcs_path(output, object_optional=True)
    try:
        found = gcsio.GcsIO().get_bucket(bucket)
    except exceptions.GoogleAPICallError as e:
        raise Refused(f"--output {output}: bucket {bucket!r} cannot be read: {e.message}") from e
    if found is None:
        raise Refused(f"--output {output}: bucket {bucket!r} does not exist")


def _matched_quietly(pattern: str) -> list[str]:
    try:
        return _matched(pattern)
    except Refused:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 when the pipeline finished, 2 when it was refused."""
    try:
        job = prepare(argv)
    except Refused as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    dry_run = bool(job.options.view_as(TestOptions).dry_run)
    started = time.perf_counter()
    show = not dry_run and sys.stderr.isatty() and _in_process(job)
    if show:
        with progress.ProgressLine(progress.COUNTS):
            result = pipeline.run(job)
    else:
        result = pipeline.run(job)
    seconds = time.perf_counter() - started
    if dry_run:
        print(f"{PROG}: dry run: the job was built, not run (--dry_run)")
        return 0
    predicted, errors = pipeline.counts(result)
    rate = (predicted + errors) / seconds if seconds > 0 else 0.0
    print(
        f"{PROG}: {predicted} predicted, {errors} errors in {seconds:.1f} s "
        f"({rate:.0f} instances/s); results in {job.output}"
    )
    return 0


def _in_process(job: Job) -> bool:
    """Whether the pipeline's workers run in this process (so the progress line sees them)."""
    runner = job.options.view_as(StandardOptions).runner
    mode = job.options.view_as(DirectOptions).direct_running_mode
    return runner == Runner.DIRECT.value and mode in ("in_memory", "multi_threading")
