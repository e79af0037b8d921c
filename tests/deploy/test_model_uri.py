"""deploy.sh accepts exactly the gs:// URIs the function itself accepts at run time: a model
object for --model (MODEL_PATH), a bucket and prefix for --repository (MODEL_REPOSITORY).

A URI that deploy.sh let through but serving/gcs_uri.py refused would deploy a function that
fails on its first request; the reverse would refuse a working deploy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from serving.errors import ModelLoadError
from serving.storage.gcs_uri import parse_gs_prefix, parse_gs_uri
from tests.deploy.deploy_script import PROJECT, deploy_command, dry_run, run_deploy

URIS = [
    "gs://demo-models/model.tflite",
    "gs://demo_models-2/a/b/c.tflite",
    "gs://abc/x",
    "gs://ab/x",
    "gs://" + "b" * 63 + "/m.tflite",
    "gs://" + "b" * 64 + "/m.tflite",
    "gs://models.example.com/m.tflite",
    "gs://a.b..c/m.tflite",
    "gs://ab." + "c" * 64 + "/m.tflite",
    "gs://-models/m.tflite",
    "gs://models-/m.tflite",
    "gs://Models/m.tflite",
    "gs://demo-models",
    "gs://demo-models/",
    "gs://demo-models/v2/",
    "gs://demo-models/..",
    "gs://demo-models/.",
    "gs://demo-models/" + "é" * 512,
    "gs://demo-models/" + "é" * 513,
    "gs://demo-models/name with spaces.tflite",
    "gs://demo-models/tab\there",
    "gs:/demo-models/m.tflite",
    "s3://demo-models/m.tflite",
    "/srv/models/m.tflite",
]
# Stricter on purpose: gcloud splits --set-env-vars on commas, and Cloud Storage refuses
# bucket names starting with "goog" (the function would only learn that from a 404).
DEPLOY_ONLY_REFUSES = ["gs://demo-models/a,b.tflite", "gs://google-models/m.tflite"]


def serving_accepts(uri: str, parse: Callable[[str], object] = parse_gs_uri) -> bool:
    try:
        parse(uri)
    except ModelLoadError:
        return False
    return True


@pytest.mark.parametrize("uri", URIS, ids=lambda uri: uri[:60])
def test_same_verdict_as_the_function(uri: str) -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, "--model", uri)
    accepted = result.returncode == 0
    assert accepted == serving_accepts(uri), result.stderr
    if accepted:
        assert dry_run("--project", PROJECT, "--model", uri)[0] == deploy_command(
            env_vars=[f"MODEL_PATH={uri}"]
        )
    else:
        assert result.returncode == 2
        assert result.stderr.startswith("deploy.sh: ")
        assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("uri", DEPLOY_ONLY_REFUSES)
def test_stricter_than_the_function(uri: str) -> None:
    assert serving_accepts(uri)
    assert run_deploy("--dry-run", "--project", PROJECT, "--model", uri).returncode == 2


PREFIXES = [
    "gs://demo-models",
    "gs://demo-models/",
    "gs://demo-models/repo",
    "gs://demo-models/repo/",
    "gs://demo-models/a/b/c//",
    "gs://ab/repo",
    "gs://Demo/repo",
    "gs://demo-models/..",
    "gs://demo-models/.",
    "gs://demo-models/" + "é" * 513,
    "gs://demo-models/tab\there",
    "gs:/demo-models",
    "s3://demo-models/repo",
    "gs://",
]


@pytest.mark.parametrize("uri", PREFIXES, ids=lambda uri: uri[:40])
def test_same_verdict_on_a_repository_uri_as_the_function(uri: str) -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, "--repository", uri)
    assert (result.returncode == 0) == serving_accepts(uri, parse_gs_prefix), result.stderr
    if result.returncode != 0:
        assert result.returncode == 2
        assert result.stderr.startswith("deploy.sh: ")
        assert result.stderr.count("\n") == 1
