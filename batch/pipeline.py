"""The Beam pipeline: read, score with RunInference over :class:`batch.scoring.Scorer`, write.

::

    JSONL lines (file, line) | pictures (uri, bytes)
        -> RunInference(TFLiteModelHandler)   BatchElements, one model per worker process
        -> Split                              predictions / errors, counted
        -> WriteToText x 2                    predictions-SSSSS-of-NNNNN.jsonl, errors-...

Beam writes each output to temporary files and renames them into place when the job
finishes: a failed job leaves no partial ``predictions-*`` or ``errors-*`` file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineResult, PipelineRunner

from batch import progress, storage
from batch.scoring import Element, InputKind, Outcome, Scorer
from serving.runtime import Runtime
from serving.settings import Settings

NAMESPACE = "batch"
PREDICTIONS = "predictions"
ERRORS = "errors"
SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Job:
    """Everything a run needs, checked by :func:`batch.cli.prepare`."""

    settings: Settings  # MODEL_PATH is --model
    kind: InputKind
    input: str
    output: str
    signature: str | None
    options: PipelineOptions


class TFLiteModelHandler(ModelHandler[Element, Outcome, Scorer]):
    """A Beam model handler over :class:`serving.model.Model`, loaded as the function loads it
    (fetched and verified by :mod:`serving.storage.source`, labels and normalisation overrides
    applied); RunInference keeps one per worker process, shared by its threads."""

    def __init__(self, settings: Settings, kind: InputKind, signature: str | None) -> None:
        # Batches of a full invoke (MAX_BATCH_SIZE) for each interpreter of the pool, which
        # the scorer runs at once; a bundle's last batch may be smaller.
        size = settings.max_batch_size * settings.pool_size
        super().__init__(min_batch_size=size, max_batch_size=size)
        self._settings = settings
        self._kind = kind
        self._signature = signature

    def load_model(self) -> Scorer:
        storage.connect_emulator_anonymously()
        model = Runtime(self._settings).load().model
        return Scorer(
            model,
            self._kind,
            self._signature,
            max_image_pixels=self._settings.max_image_pixels,
            workers=self._settings.pool_size,
        )

    def run_inference(
        self,
        batch: Sequence[Element],
        model: Scorer,
        inference_args: Mapping[str, Any] | None = None,
    ) -> list[Outcome]:
        return model.score(batch)

    def get_num_bytes(self, batch: Sequence[Element]) -> int:
        return sum(len(data) for _, data in batch)

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


class _Split(beam.DoFn):
    """Prediction lines to the main output, error lines to ``errors``; both counted."""

    def __init__(self) -> None:
        self.predicted = Metrics.counter(NAMESPACE, PREDICTIONS)
        self.errors = Metrics.counter(NAMESPACE, ERRORS)

    def process(self, outcome: Outcome) -> Iterator[Any]:
        if outcome.ok:
            self.predicted.inc()
            progress.COUNTS.add(1, 0)
            yield outcome.line
        else:
            self.errors.inc()
            progress.COUNTS.add(0, 1)
            yield beam.pvalue.TaggedOutput(ERRORS, outcome.line)


def _read_picture(readable: fileio.ReadableFile) -> Element:
    return readable.metadata.path, readable.read()


def build(pipeline: beam.Pipeline, job: Job) -> None:
    """Add the read, score and write steps of ``job`` to ``pipeline``."""
    if job.kind is InputKind.JSONL:
        elements = pipeline | "ReadLines" >> beam.io.ReadFromTextWithFilename(
            job.input, coder=coders.BytesCoder()
        )
    else:
        elements = (
            pipeline
            | "MatchPictures" >> fileio.MatchFiles(job.input)
            # One element per file, spread over the workers (a match is a single bundle).
            | "Spread" >> beam.Reshuffle()
            | "OpenPictures" >> fileio.ReadMatches()
            | "ReadPictures" >> beam.Map(_read_picture)
        )
    handler = TFLiteModelHandler(job.settings, job.kind, job.signature)
    outcomes = elements | "Score" >> RunInference(handler)
    split = outcomes | "Split" >> beam.ParDo(_Split()).with_outputs(ERRORS, main=PREDICTIONS)
    for name in (PREDICTIONS, ERRORS):
        _ = split[name] | f"Write{name.title()}" >> beam.io.WriteToText(
            FileSystems.join(job.output, name),
            file_name_suffix=SUFFIX,
            coder=coders.BytesCoder(),
        )


def _runner(options: PipelineOptions) -> PipelineRunner | None:
    """The runner for ``options``: for ``DirectRunner``, Beam's Python FnApiRunner itself.

    Beam 2.77's ``DirectRunner`` first tries its Prism runner, a Go binary it downloads from
    GitHub at run time (then falls back to the FnApiRunner when that fails, as it does
    offline): a network call and a foreign binary on every run. This builds the FnApiRunner
    the way ``DirectRunner`` builds it (the options handed to its workers).
    """
    if options.view_as(StandardOptions).runner != "DirectRunner":
        return None  # the runner named by the options (Dataflow)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(provision))


def run(job: Job) -> PipelineResult:
    """Run ``job`` to the end (a Dataflow dry run only builds the job) and return the result."""
    storage.connect_emulator_anonymously()
    pipeline = beam.Pipeline(runner=_runner(job.options), options=job.options)
    build(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    return result


def counts(result: PipelineResult) -> tuple[int, int]:
    """Predicted and error counts from the job's metrics (committed, else attempted)."""
    from apache_beam.metrics.metric import MetricsFilter

    found = {PREDICTIONS: 0, ERRORS: 0}
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for counter in query["counters"]:
        if counter.key.metric.name in found:
            value = counter.committed if counter.committed is not None else counter.attempted
            found[counter.key.metric.name] += value or 0
    return found[PREDICTIONS], found[ERRORS]
