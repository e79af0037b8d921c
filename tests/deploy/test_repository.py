"""deploy.sh --repository gs://BUCKET/PREFIX, --upload-repository DIR: a model repository.

The function gets MODEL_REPOSITORY (and none of the single model's settings); a local folder
is checked with the function's own listing and models.json rules before anything is sent;
the memory check counts the largest version, from the folder or from Cloud Storage's
listing (the real ``gcloud storage ls -l`` against the storage emulator).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from serving.memory import estimate, mib
from tests.deploy import fake_gcloud
from tests.deploy.deploy_script import (
    PROJECT,
    REPO,
    TFLITE_HEADER,
    boost_command,
    deploy_command,
    deploy_with,
    describe_command,
    dry_run,
    run_deploy,
)
from tests.deploy.offline_gcloud import GCLOUD, NO_GCLOUD_REASON

REPOSITORY = "gs://demo-models/repo"
BUNDLED = REPO / "model" / "quantized_model.tflite"
MIB = 2**20


def write_model(path: Path, size: int | None = None) -> None:
    """A version's model.tflite: the bundled model, or a sparse file of ``size`` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if size is None:
        shutil.copyfile(BUNDLED, path)
        return
    with path.open("wb") as f:
        f.write(TFLITE_HEADER)
        f.truncate(size)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A local repository: digits 1 and 2 (3 MiB, the largest), letters 1, and junk."""
    root = tmp_path / "models"
    write_model(root / "digits" / "1" / "model.tflite")
    write_model(root / "digits" / "2" / "model.tflite", 3 * MIB)
    write_model(root / "letters" / "1" / "model.tflite")
    (root / "README.txt").write_text("notes")
    (root / "models.json").write_text('{"models": {"digits": {"versions": "all"}}}')
    return root


def expected_estimate(size: int, memory: int = 1024 * MIB) -> str:
    """The memory line for a repository whose largest version has ``size`` bytes."""
    found = estimate(
        size, workers=1, pool_per_worker=4, max_request_bytes=10 * MIB, downloaded=True
    )
    return f"{found.describe()} of {mib(memory)}"


def memory_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith("# memory: ")]
    return line.removeprefix("# memory: ")


def upload_dry_run(folder: Path):
    """``deploy.sh --dry-run --repository REPOSITORY --upload-repository FOLDER``."""
    args = ("--repository", REPOSITORY, "--upload-repository", str(folder))
    return run_deploy("--dry-run", "--project", PROJECT, *args)


def refused(result, message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr == f"deploy.sh: {message}\n"
    assert result.stdout == ""


def test_a_repository_sets_model_repository_instead_of_the_single_model() -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, "--repository", REPOSITORY)
    assert result.returncode == 0, result.stderr
    assert dry_run("--project", PROJECT, "--repository", REPOSITORY) == [
        deploy_command(repository=REPOSITORY),
        boost_command(),
        describe_command(),
    ]
    # Nothing to measure without touching the cloud: the dry run says what would be checked.
    assert memory_line(result.stderr) == (
        "not measured in a dry run: deploy.sh lists gs://demo-models/repo/*/*/model.tflite "
        "(gcloud storage ls -l) and checks its largest version against --memory"
    )


def test_the_repository_from_the_environment() -> None:
    commands = dry_run(env={"DEPLOY_PROJECT": PROJECT, "DEPLOY_REPOSITORY": "gs://demo-models"})
    assert commands[0] == deploy_command(repository="gs://demo-models")


def test_upload_repository_checks_the_folder_then_copies_it_first(folder: Path) -> None:
    args = ("--project", PROJECT, "--repository", REPOSITORY, "--upload-repository", str(folder))
    result = run_deploy("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    assert dry_run(*args) == [
        [
            "gcloud",
            "storage",
            "rsync",
            str(folder),
            REPOSITORY,
            "--recursive",
            f"--project={PROJECT}",
        ],
        deploy_command(repository=REPOSITORY),
        boost_command(),
        describe_command(),
    ]
    assert memory_line(result.stderr) == (
        "the largest version (digits/2, 3.0 MiB): " + expected_estimate(3 * MIB)
    )
    assert memory_line(result.stderr) == (
        "the largest version (digits/2, 3.0 MiB): about 252 MiB (46 MiB runtime, 3.0 MiB "
        "weights, 3.0 MiB downloaded model, 200 MiB for one JSON request at the body limit) "
        "of 1024 MiB"
    )
    # What the function will ignore is named, once.
    assert result.stderr.startswith(
        f"deploy.sh: warning: the function ignores {folder}/README.txt (not a model folder)\n"
    )


def test_a_memory_too_small_for_the_largest_version_is_refused(folder: Path) -> None:
    write_model(folder / "letters" / "7" / "model.tflite", 900 * MIB)  # sparse
    result = upload_dry_run(folder)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.endswith(
        "deploy.sh: --memory 1Gi: 1024 MiB cannot hold the largest version (letters/7, 900 MiB) "
        "plus one request at the body limit: about 2046 MiB (46 MiB runtime, 900 MiB weights, "
        "900 MiB downloaded model, 200 MiB for one JSON request at the body limit); use "
        "--memory 4Gi or more, or a smaller body limit (--env MAX_REQUEST_BYTES=...)\n"
    )


@pytest.mark.parametrize(
    ("models_json", "message"),
    [
        (
            "{not json",
            "{folder}/models.json: the file: expected JSON, received Expecting property name "
            "enclosed in double quotes at line 1 column 2",
        ),
        (
            '{"models": {"digits": {"versions": [1], "labels": {"stable": 2}}}}',
            "{folder}/models.json: models.digits.labels.stable: expected one of the versions the "
            "policy serves ([1]), received 2",
        ),
        (
            '{"models": {"numbers": {}}}',
            "{folder}/models.json: models.numbers: expected a model folder "
            "numbers/<version>/model.tflite in {folder}, received no such folder",
        ),
        (
            '{"model": {}}',
            '{folder}/models.json: model: expected only the key "models", received an unknown key',
        ),
    ],
    ids=["not json", "label outside the policy", "no such model", "unknown key"],
)
def test_a_broken_models_json_is_refused_before_anything_is_sent(
    folder: Path, models_json: str, message: str
) -> None:
    (folder / "models.json").write_text(models_json)
    result = upload_dry_run(folder)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.endswith(f"deploy.sh: {message.format(folder=folder)}\n")


def test_a_folder_without_a_version_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    (empty / "digits" / "v1").mkdir(parents=True)  # not a version number
    result = upload_dry_run(empty)
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"deploy.sh: no model in {empty}: expected <name>/<version>/model.tflite in it\n"
    )


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    args = ("--repository", REPOSITORY, "--upload-repository", str(tmp_path / "nowhere"))
    refused(
        run_deploy("--dry-run", "--project", PROJECT, *args),
        f"model repository {tmp_path / 'nowhere'} is not a directory",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--model", "gs://demo-models/m.tflite"),
            "--repository and --model are exclusive: --model serves one model, --repository a "
            "folder of models; give one of them",
        ),
        (
            ("--model", str(BUNDLED)),
            "--repository and --model are exclusive: --model serves one model, --repository a "
            "folder of models; give one of them",
        ),
        (
            ("--upload",),
            "--upload copies the one --model; with --repository, --upload-repository DIR "
            "copies a folder of models",
        ),
        (
            ("--model-name", "digits"),
            "--model-name is for a single model; with --repository, models and versions are "
            "named by their folders (<name>/<version>/model.tflite)",
        ),
        (
            ("--model-version", "2"),
            "--model-version is for a single model; with --repository, models and versions "
            "are named by their folders (<name>/<version>/model.tflite)",
        ),
        (
            ("--env", "LABELS_PATH=gs://demo-models/labels.txt"),
            "--env LABELS_PATH is for a single model; with --repository each model carries its "
            "own metadata",
        ),
        (
            ("--env", "IMAGE_MEAN=127.5"),
            "--env IMAGE_MEAN is for a single model; with --repository each model carries its "
            "own metadata",
        ),
        (
            ("--env", "MODEL_REPOSITORY=gs://other/x"),
            "--env MODEL_REPOSITORY is set by --repository; use that option",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_single_model_settings_are_refused_beside_a_repository(
    args: tuple[str, ...], message: str
) -> None:
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--repository", REPOSITORY, *args), message
    )


def test_model_name_from_the_environment_is_refused_too() -> None:
    env = {"DEPLOY_MODEL_NAME": "digits"}
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--repository", REPOSITORY, env=env),
        "--model-name is for a single model; with --repository, models and versions are named "
        "by their folders (<name>/<version>/model.tflite)",
    )


def test_upload_repository_needs_a_destination(folder: Path) -> None:
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--upload-repository", str(folder)),
        f"--upload-repository needs --repository gs://BUCKET/PREFIX to copy {folder} to",
    )


def test_a_local_repository_path_says_how_to_copy_it(folder: Path) -> None:
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--repository", str(folder)),
        f"--repository must be gs://BUCKET/PREFIX, got '{folder}'; to serve a local folder, "
        f"copy it there: --repository gs://BUCKET/PREFIX --upload-repository {folder}",
    )


# --- the real run, with the fake gcloud at the cloud boundary --------------------------------


LS_COMMAND = ["storage", "ls", "-l", f"{REPOSITORY}/*/*/model.tflite", f"--project={PROJECT}"]


def test_upload_repository_copies_then_deploys(fake_dir: Path, folder: Path) -> None:
    args = ("--project", PROJECT, "--repository", REPOSITORY, "--upload-repository", str(folder))
    result = deploy_with(fake_dir, *args)
    assert result.returncode == 0, result.stderr
    assert fake_gcloud.calls(fake_dir) == [argv[1:] for argv in dry_run(*args)]
    assert f"serving the repository {REPOSITORY}:" in result.stdout
    assert f"{fake_gcloud.FUNCTION_URL}/v2/repository/index" in result.stdout


def ls_lines(*objects: tuple[int, str]) -> str:
    """``gcloud storage ls -l`` output, as its long-listing format prints it."""
    rows = [f"{size:>10}  2026-01-01T00:00:00Z  {REPOSITORY}/{name}" for size, name in objects]
    total = sum(size for size, _ in objects)
    return "\n".join([*rows, f"TOTAL: {len(objects)} objects, {total} bytes ({mib(total)})"])


def test_the_real_run_lists_the_bucket_and_checks_the_largest_version(fake_dir: Path) -> None:
    listing = ls_lines((1000, "digits/1/model.tflite"), (700 * MIB, "digits/2/model.tflite"))
    args = ("--project", PROJECT, "--repository", REPOSITORY)
    result = deploy_with(fake_dir, *args, env={"FAKE_GCLOUD_LS": listing})
    assert result.returncode == 2
    assert fake_gcloud.calls(fake_dir) == [LS_COMMAND]  # refused before the deploy
    assert result.stderr.endswith(
        "deploy.sh: --memory 1Gi: 1024 MiB cannot hold the largest version (digits/2, 700 MiB) "
        "plus one request at the body limit: about 1646 MiB (46 MiB runtime, 700 MiB weights, "
        "700 MiB downloaded model, 200 MiB for one JSON request at the body limit); use "
        "--memory 2Gi or more, or a smaller body limit (--env MAX_REQUEST_BYTES=...)\n"
    )
    fits = deploy_with(fake_dir, *args, "--memory", "2Gi", env={"FAKE_GCLOUD_LS": listing})
    assert fits.returncode == 0, fits.stderr
    assert fake_gcloud.calls(fake_dir)[1:] == [
        LS_COMMAND,
        deploy_command(repository=REPOSITORY, memory="2Gi")[1:],
        boost_command()[1:],
        describe_command()[1:],
    ]


def test_an_empty_bucket_is_refused(fake_dir: Path) -> None:
    result = deploy_with(fake_dir, "--project", PROJECT, "--repository", REPOSITORY)
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"deploy.sh: no model in {REPOSITORY}: expected <name>/<version>/model.tflite in it\n"
    )
    assert fake_gcloud.calls(fake_dir) == [LS_COMMAND]


def test_a_listing_error_stops_with_gcloud_status(tmp_path: Path) -> None:
    bin_dir = tmp_path / "denied"
    fake_gcloud.install_failing(bin_dir, "ERROR: (gcloud.storage.ls) HTTPError 403: denied", 1)
    result = deploy_with(bin_dir, "--project", PROJECT, "--repository", REPOSITORY)
    assert result.returncode == 1
    assert result.stderr.endswith(
        "ERROR: (gcloud.storage.ls) HTTPError 403: denied\n"
        f"deploy.sh: could not list the repository {REPOSITORY} (above)\n"
    )


@pytest.mark.skipif(GCLOUD is None, reason=NO_GCLOUD_REASON)
def test_the_listing_of_the_real_gcloud_against_the_storage_emulator(
    fake_dir: Path, tmp_path: Path, storage_emulator
) -> None:
    """Real Cloud Storage listing: the real ``gcloud storage ls -l`` talks to the emulator."""
    storage_emulator.create_bucket("demo-models")
    storage_emulator.upload("demo-models", "repo/digits/1/model.tflite", b"m" * 5000)
    storage_emulator.upload("demo-models", "repo/digits/12/model.tflite", b"m" * 2 * MIB)
    storage_emulator.upload("demo-models", "repo/letters/3/model.tflite", b"m" * 300_000)
    storage_emulator.upload("demo-models", "repo/letters/3/notes.txt", b"m" * 9 * MIB)
    storage_emulator.upload("demo-models", "repo/models.json", b'{"models": {}}')
    token = tmp_path / "token"
    token.write_text("emulator-token")
    env = {
        "FAKE_GCLOUD_REAL_STORAGE": GCLOUD,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": storage_emulator.host + "/",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
    }
    result = deploy_with(
        fake_dir, "--project", PROJECT, "--repository", REPOSITORY, "--memory", "128Mi", env=env
    )
    assert result.returncode == 2, result.stderr
    assert fake_gcloud.calls(fake_dir) == [LS_COMMAND]
    assert result.stderr.endswith(
        "deploy.sh: --memory 128Mi: 128 MiB cannot hold the largest version (digits/12, 2.0 MiB) "
        "plus one request at the body limit: about 250 MiB (46 MiB runtime, 2.0 MiB weights, "
        "2.0 MiB downloaded model, 200 MiB for one JSON request at the body limit); use "
        "--memory 512Mi or more, or a smaller body limit (--env MAX_REQUEST_BYTES=...)\n"
    )


def test_a_folder_that_cannot_be_checked_is_not_uploaded(tmp_path: Path, folder: Path) -> None:
    """An old python3 cannot run the check: the folder is not sent unchecked."""
    bin_dir = tmp_path / "old-python"
    bin_dir.mkdir()
    python = bin_dir / "python3"
    python.write_text(
        '#!/bin/sh\necho "TypeError: unsupported operand type(s) for |" >&2\nexit 1\n'
    )
    python.chmod(0o755)
    result = run_deploy(
        "--dry-run", "--project", PROJECT, "--repository", REPOSITORY,
        "--upload-repository", str(folder), path=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    )  # fmt: skip
    refused(
        result,
        f"--upload-repository {folder} could not be checked (python3 3.10 or later is needed): "
        "python3 -m serving.estimate failed: TypeError: unsupported operand type(s) for |",
    )


def test_with_two_workers_the_largest_version_must_fit_in_each_workers_share(
    folder: Path,
) -> None:
    """Each worker loads its own versions within half of what the runtime and the requests
    leave (the runtime's repository_shares): 2 x (300 MiB weights + 300 MiB download) do
    not fit in 1 GiB, though one copy would."""
    write_model(folder / "letters" / "7" / "model.tflite", 300 * MIB)  # sparse
    args = ("--repository", REPOSITORY, "--upload-repository", str(folder), "--cpu", "2")
    result = run_deploy("--dry-run", "--project", PROJECT, *args)
    assert result.returncode == 2
    assert result.stderr.endswith(
        "deploy.sh: --memory 1Gi: 1024 MiB cannot hold the largest version (letters/7, 300 MiB) "
        "plus one request at the body limit: about 1460 MiB (60 MiB runtime, 600 MiB weights, "
        "600 MiB downloaded model, 200 MiB for one JSON request at the body limit); use "
        "--memory 2Gi or more, or a smaller body limit (--env MAX_REQUEST_BYTES=...)\n"
    )
    fits = run_deploy("--dry-run", "--project", PROJECT, *args, "--memory", "2Gi")
    assert fits.returncode == 0, fits.stderr
