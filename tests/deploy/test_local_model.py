"""deploy.sh --model FILE: a local .tflite shipped in the upload, or sent to Cloud Storage.

The bundled model is never edited: the function's source is staged in a temporary folder
with the local file in it. Anything that is not a TFLite flatbuffer is refused before
anything runs, a Keras file or SavedModel with the converter's command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.deploy import fake_gcloud
from tests.deploy.deploy_script import (
    PROJECT,
    REPO,
    STAGE_REFERENCE,
    TFLITE_HEADER,
    boost_command,
    deploy_command,
    deploy_with,
    describe_command,
    dry_run,
    run_deploy,
    run_pasted,
    staging_lines,
    upload_command,
)

BUNDLED = REPO / "model" / "quantized_model.tflite"
BUCKET_MODEL = "gs://demo-models/mine/model.tflite"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A real model of the user's own, outside the checkout (a copy of the bundled one)."""
    path = tmp_path / "my_model.tflite"
    path.write_bytes(BUNDLED.read_bytes())
    return path


def expected_staging(model: Path, shipped: str) -> list[str]:
    runtime = " ".join(str(REPO / name) for name in ("main.py", "requirements.txt", "serving"))
    return [
        "STAGED_SOURCE=$(mktemp -d)",
        f'cp -R {runtime} {REPO}/.gcloudignore "{STAGE_REFERENCE}"',
        f'mkdir "{STAGE_REFERENCE}"/model',
        f'cp {model} "{STAGE_REFERENCE}"/{shipped}',
        f"printf '%s\\n' '!/{shipped}' >>\"{STAGE_REFERENCE}\"/.gcloudignore",
    ]


def test_a_local_model_is_staged_with_the_runtime_and_named_by_model_path(model: Path) -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, "--model", str(model))
    assert result.returncode == 0, result.stderr
    assert staging_lines(result.stdout) == expected_staging(model, "model/my_model.tflite")
    # The staging comes first, then the same commands as for the bundled model.
    assert result.stdout.splitlines()[:5] == expected_staging(model, "model/my_model.tflite")
    assert dry_run("--project", PROJECT, "--model", str(model)) == [
        deploy_command(source=STAGE_REFERENCE, env_vars=["MODEL_PATH=model/my_model.tflite"]),
        boost_command(),
        describe_command(),
    ]


def test_a_file_name_that_is_not_a_plain_name_ships_as_model_tflite(tmp_path: Path) -> None:
    model = tmp_path / "my model (v2),final.tflite"
    model.write_bytes(TFLITE_HEADER)
    commands = dry_run("--project", PROJECT, "--model", str(model))
    assert commands[0] == deploy_command(
        source=STAGE_REFERENCE, env_vars=["MODEL_PATH=model/model.tflite"]
    )


def test_the_local_model_is_measured_for_memory(tmp_path: Path) -> None:
    model = tmp_path / "big.tflite"
    with model.open("wb") as f:  # sparse after the header: the estimate reads only the size
        f.write(TFLITE_HEADER)
        f.truncate(900 * 2**20)
    result = run_deploy("--dry-run", "--project", PROJECT, "--model", str(model))
    # Shipped in the upload, not downloaded: weights once, no copy in the temp dir.
    assert result.returncode == 2
    assert result.stderr.startswith(
        "deploy.sh: --memory 1Gi: 1024 MiB cannot hold the model plus one request at the body "
        "limit: about 1146 MiB (46 MiB runtime, 900 MiB weights, 200 MiB for one JSON request "
    )


@pytest.mark.parametrize(
    ("args", "uploaded"),
    [
        (("--model", "{model}", "--upload", BUCKET_MODEL), "{model}"),
        (("--model", BUCKET_MODEL, "--upload", "{model}"), "{model}"),
        (("--upload", BUCKET_MODEL), str(BUNDLED)),
        (("--model", BUCKET_MODEL, "--upload"), str(BUNDLED)),
    ],
    ids=["model FILE upload URI", "model URI upload FILE", "upload URI", "model URI upload"],
)
def test_upload_copies_the_local_file_and_serves_it_from_cloud_storage(
    model: Path, args: tuple[str, ...], uploaded: str
) -> None:
    argv = [arg.format(model=model) for arg in args]
    assert dry_run("--project", PROJECT, *argv) == [
        upload_command(Path(uploaded.format(model=model)), BUCKET_MODEL),
        deploy_command(env_vars=[f"MODEL_PATH={BUCKET_MODEL}"]),
        boost_command(),
        describe_command(),
    ]


def test_an_uploaded_local_model_counts_its_download(model: Path) -> None:
    result = run_deploy(
        "--dry-run", "--project", PROJECT, "--model", str(model), "--upload", BUCKET_MODEL
    )
    assert result.returncode == 0, result.stderr
    assert " downloaded model, " in result.stderr


def refused(result, message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr == f"deploy.sh: {message}\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("my_model.keras", b"PK\x03\x04" + b"\x00" * 60, "a Keras model"),
        ("my_model.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 60, "a Keras model"),
    ],
)
def test_a_keras_file_is_pointed_at_the_converter(
    tmp_path: Path, name: str, content: bytes, kind: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--model", str(path)),
        f"--model {path} is {kind}, not a TFLite model: convert it first: python -m convert "
        f"{path} -o my_model.tflite (python -m convert --help)",
    )


def test_a_saved_model_is_pointed_at_the_converter(tmp_path: Path) -> None:
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--model", f"{saved}/"),
        f"--model {saved}/ is a SavedModel, not a TFLite model: convert it first: "
        f"python -m convert {saved}/ -o exported.tflite (python -m convert --help)",
    )


def test_a_folder_that_is_no_model_is_refused(tmp_path: Path) -> None:
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--model", str(tmp_path)),
        f"--model {tmp_path} is a folder, not a .tflite file",
    )


@pytest.mark.parametrize(
    "content",
    [b"", b"TFL3", b"\x1c\x00\x00\x00TFL2rest", b'{"not": "a model"}'],
    ids=["empty", "identifier at 0-4", "TFL2", "json"],
)
def test_a_file_without_the_tflite_identifier_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    for args in (("--model", str(path)), ("--model", BUCKET_MODEL, "--upload", str(path))):
        option = args[-2]
        refused(
            run_deploy("--dry-run", "--project", PROJECT, *args),
            f"{option} {path} is not a TFLite model (expected the identifier 'TFL3' at bytes "
            "4-8 of a .tflite file)",
        )


def test_a_local_model_with_a_file_to_upload_is_refused(model: Path) -> None:
    message = (
        f"--model {model} is a local file: ship it in the upload (no --upload), or copy it to "
        "Cloud Storage with --upload gs://BUCKET/OBJECT"
    )
    refused(
        run_deploy("--dry-run", "--project", PROJECT, "--model", str(model), "--upload"), message
    )
    refused(
        run_deploy(
            "--dry-run", "--project", PROJECT, "--model", str(model), "--upload", str(model)
        ),
        message,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pasted_dry_run_stages_the_same_folder(tmp_path: Path, model: Path) -> None:
    """The printed staging lines, run as a script, give gcloud the folder deploy.sh would."""
    result = run_deploy("--dry-run", "--project", PROJECT, "--model", str(model))
    assert result.returncode == 0, result.stderr
    pasted, fake_dir = run_pasted(result.stdout, tmp_path, {"FAKE_GCLOUD_KEEP_SOURCE": "1"})
    assert pasted.returncode == 0, pasted.stderr
    source = fake_dir / "source"
    assert sorted(p.name for p in source.iterdir()) == [
        ".gcloudignore",
        "main.py",
        "model",
        "requirements.txt",
        "serving",
    ]
    assert [p.name for p in (source / "model").iterdir()] == ["my_model.tflite"]
    assert sha256(source / "model" / "my_model.tflite") == sha256(model)
    ignore = (source / ".gcloudignore").read_text()
    assert ignore == (REPO / ".gcloudignore").read_text() + "!/model/my_model.tflite\n"


def test_the_deployed_message_gives_no_digits_example_for_another_model(
    fake_dir: Path, model: Path
) -> None:
    result = deploy_with(fake_dir, "--project", PROJECT, "--model", str(model))
    assert result.returncode == 0, result.stderr
    assert "bundled 8x8x1 digits model" not in result.stdout
    assert (
        "Predict, TF Serving REST (instances shaped as the metadata above says):\n"
        '  curl -H "Authorization: Bearer $(gcloud auth print-identity-token)" '
        '-H "Content-Type: application/json" \\\n'
        f"    -d '{{\"instances\": [...]}}' {fake_gcloud.FUNCTION_URL}/v1/models/model:predict\n"
    ) in result.stdout
