"""DataflowRunner: the job is built offline (Beam's --dry_run=True), with what workers need."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from tests.batch.conftest import SKIP_WITHOUT_BEAM
from tests.conftest import REPO
from tests.deploy.offline_gcloud import run_offline

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)

DATAFLOW = (
    *("--runner", "DataflowRunner", "--project", "my-project", "--region", "europe-west1"),
    *("--temp_location", "gs://batch-temp/tmp"),
)


@pytest.fixture
def in_storage(storage_emulator, digits_model):
    storage_emulator.upload("batch-models", "bundled.tflite", digits_model.read_bytes())
    storage_emulator.upload("batch-in", "rows/part-0.jsonl", b"[1]\n")
    storage_emulator.create_bucket("batch-out")
    return storage_emulator


def args(*extra: str) -> list[str]:
    return [
        *("--model", "gs://batch-models/bundled.tflite", "--input", "gs://batch-in/rows/*"),
        *("--output", "gs://batch-out/scored", *DATAFLOW, *extra),
    ]


def staged(job) -> dict[str, str]:
    """The files the job stages for its workers: staged name -> local file."""
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    found = {}
    for environment in job.proto_pipeline.components.environments.values():
        for artifact in environment.dependencies:
            assert artifact.role_urn == common_urns.artifact_roles.STAGING_TO.urn
            name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                artifact.role_payload
            ).staged_name
            path = beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload).path
            found[name] = path
    return found


def test_dry_run_builds_the_job_with_the_worker_requirements_and_the_code(in_storage):
    from batch import cli, pipeline

    job = cli.prepare(args("--dry_run=True", "--requirements_cache=skip"))
    result = pipeline.run(job)
    files = staged(result.job)
    assert {"requirements.txt", "workflow.tar.gz"} <= set(files)
    worker = (REPO / "batch" / "requirements-worker.txt").read_text()
    assert Path(files["requirements.txt"]).read_text() == worker
    with tarfile.open(files["workflow.tar.gz"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"serving/model/model.py", "serving/protocol/tfserving.py", "batch/scoring.py"} <= names
    assert not any(name.startswith(("tests/", "bench/", "convert/")) for name in names)
    assert not any(name.endswith(".tflite") for name in names)  # the model comes from gs://
    options = result.job.options.get_all_options()
    assert options["requirements_file"].endswith("batch/requirements-worker.txt")
    assert options["project"] == "my-project"
    assert result.job.proto.type.name == "JOB_TYPE_BATCH"


def test_dry_run_from_the_command_submits_nothing_and_stays_on_loopback(in_storage):
    """Under strace where it works (run_offline fails the test on any other address)."""
    result = run_offline(
        [sys.executable, "-m", "batch", *args("--dry_run=True", "--requirements_cache=skip")],
        cwd=REPO,
        env={"STORAGE_EMULATOR_HOST": in_storage.host},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "python -m batch: dry run: the job was built, not run (--dry_run)"
    )
