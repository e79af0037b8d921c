"""deploy.sh refuses bad settings before it runs anything: one clear line, exit status 2."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.deploy import fake_gcloud
from tests.deploy.deploy_script import BASH, DEPLOY, PROJECT, WARMUP_SA, run_deploy
from tests.deploy.offline_gcloud import run_offline

SA = WARMUP_SA


def assert_refused(result, message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == f"deploy.sh: {message}\n"
    # Nothing was printed as a command, so nothing would have run.
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--concurrency", "4", "--cpu", "0.5"),
            "concurrency 4 needs at least 1 vCPU, got --cpu 0.5: "
            "raise --cpu to 1 or set --concurrency 1",
        ),
        (
            ("--cpu", "500m"),  # concurrency defaults to the pool size, 4
            "concurrency 4 needs at least 1 vCPU, got --cpu 500m: "
            "raise --cpu to 1 or set --concurrency 1",
        ),
        (
            ("--model", "gs://Bad_Bucket/model.tflite"),
            "--model must be gs://BUCKET/OBJECT with a lowercase bucket name and an object name, "
            "got 'gs://Bad_Bucket/model.tflite'",
        ),
        (
            ("--model", "gs://demo-models"),
            "--model must be gs://BUCKET/OBJECT with a lowercase bucket name and an object name, "
            "got 'gs://demo-models'",
        ),
        (
            ("--model", "gs://demo-models/"),
            "--model must be gs://BUCKET/OBJECT with a lowercase bucket name and an object name, "
            "got 'gs://demo-models/'",
        ),
        (
            ("--model", "s3://demo-models/model.tflite"),
            "--model must be gs://BUCKET/OBJECT with a lowercase bucket name and an object name, "
            "got 's3://demo-models/model.tflite'",
        ),
        (
            ("--model", "gs://demo-models/v2/"),
            "--model names a folder, not an object: 'gs://demo-models/v2/' (add the file name)",
        ),
        (
            ("--model", "gs://demo-models/a,b.tflite"),
            "--model must not contain a comma or newline, got 'gs://demo-models/a,b.tflite'",
        ),
        (
            ("--model", "gs://" + "b" * 64 + "/m.tflite"),
            "bucket name longer than 63 characters in 'gs://" + "b" * 64 + "/m.tflite'",
        ),
        (
            ("--upload",),
            "--upload needs a destination: --upload gs://BUCKET/OBJECT, or "
            "--model gs://BUCKET/OBJECT --upload FILE",
        ),
        (
            ("--upload", "/tmp/m.tflite"),
            "--upload needs a destination: --upload gs://BUCKET/OBJECT, or "
            "--model gs://BUCKET/OBJECT --upload FILE",
        ),
        (
            ("--upload", "gs://Bad_Bucket/m.tflite"),
            "--upload must be gs://BUCKET/OBJECT with a lowercase bucket name and an object name, "
            "got 'gs://Bad_Bucket/m.tflite'",
        ),
        (
            ("--model", "gs://demo-models/a.tflite", "--upload", "gs://demo-models/b.tflite"),
            "--model gs://demo-models/a.tflite and --upload gs://demo-models/b.tflite both name "
            "the destination: give --upload the local file to copy there",
        ),
        (
            ("--model", "/nonexistent/m.tflite"),
            "model file not found: /nonexistent/m.tflite",
        ),
        (
            ("--model", "gs://demo-models/m.tflite", "--upload", "/nonexistent/m.tflite"),
            "model file not found: /nonexistent/m.tflite",
        ),
        (
            ("--warmup", "*/10 * * * *"),
            "--warmup needs --warmup-service-account EMAIL "
            "(the identity Cloud Scheduler calls with)",
        ),
        (
            ("--warmup", "every 10 minutes", "--warmup-service-account", SA),
            '--warmup must be a 5-field cron schedule such as "*/10 * * * *", '
            "got 'every 10 minutes'",
        ),
        (
            ("--warmup", "*/10 * * *", "--warmup-service-account", SA),
            "--warmup must be a 5-field cron schedule such as \"*/10 * * * *\", got '*/10 * * *'",
        ),
        (
            ("--warmup", "*/10 * * * *", "--warmup-service-account", "warmup"),
            "warm-up service account must be a service account email "
            "(name@project.iam.gserviceaccount.com), got 'warmup'",
        ),
        (
            ("--min-instances", "3", "--max-instances", "2"),
            "min-instances (3) must not exceed max-instances (2)",
        ),
        (("--concurrency", "0"), "concurrency must be a whole number from 1 to 1000, got '0'"),
        (
            ("--concurrency", "many"),
            "concurrency must be a whole number from 1 to 1000, got 'many'",
        ),
        (("--max-instances", "0"), "max-instances must be a whole number from 1 to 1000, got '0'"),
        (("--pool-size", "-1"), "pool-size must be a whole number from 1 to 64, got '-1'"),
        (("--workers", "0"), "workers must be a whole number from 1 to 64, got '0'"),
        (("--threads", "1.5"), "threads must be a whole number from 1 to 64, got '1.5'"),
        (
            ("--memory", "1024"),
            "memory must be a size with a unit (k, M, G, Ki, Mi, Gi) such as 512Mi or 1Gi, "
            "got '1024'",
        ),
        (
            ("--cpu", "0"),
            "cpu must be a positive number of vCPUs such as 0.5, 1, 2 or 2000m, got '0'",
        ),
        (
            ("--cpu", "two"),
            "cpu must be a positive number of vCPUs such as 0.5, 1, 2 or 2000m, got 'two'",
        ),
        (
            ("--timeout", "3601s"),
            "timeout must be a duration from 1s to 3600s such as 60s or 5m, got '3601s'",
        ),
        (
            ("--timeout", "1h"),
            "timeout must be a duration from 1s to 3600s such as 60s or 5m, got '1h'",
        ),
        (
            ("--name", "My_Function"),
            "function name must be 1-63 lowercase letters, digits or hyphens, "
            "starting with a letter, got 'My_Function'",
        ),
        (("--region", "central"), "region must look like us-central1, got 'central'"),
        (
            ("--runtime", "nodejs20"),
            "runtime must be python310 or later (ai-edge-litert has no wheels for older "
            "Pythons), got 'nodejs20'",
        ),
        (
            ("--runtime", "python39"),
            "runtime must be python310 or later (ai-edge-litert has no wheels for older "
            "Pythons), got 'python39'",
        ),
        (
            ("--model-name", "my/model"),
            "model name must be letters, digits, '.', '_' or '-' (it is a URL path segment), "
            "got 'my/model'",
        ),
        (("--env", "NOEQUALS"), "--env needs KEY=VALUE, got 'NOEQUALS'"),
        (
            ("--env", "MODEL_PATH=/tmp/x.tflite"),
            "--env MODEL_PATH is set by --model; use that option",
        ),
        (
            ("--env", "GOOGLE_CLOUD_PROJECT=other-project"),
            "--env GOOGLE_CLOUD_PROJECT is set by --project; use that option",
        ),
        (("--env", "A=1,2"), "--env A must not contain a comma or newline, got '1,2'"),
        (("--memory",), "--memory needs a value (see --help)"),
        (("--memory", "--cpu", "1"), "--memory needs a value (see --help)"),
        (("--no-such-option", "1"), "unknown option: --no-such-option (see --help)"),
        # An unknown option is named as such, not asked for a value.
        (("--bogus",), "unknown option: --bogus (see --help)"),
        (("--bogus", "--cpu", "1"), "unknown option: --bogus (see --help)"),
        (("--bogus=1",), "unknown option: --bogus (see --help)"),
        (("stray",), "unknown option: stray (see --help)"),
        (("-x",), "unknown option: -x (see --help)"),
        (
            ("--model", "gs://ab/m.tflite"),
            "bucket name shorter than 3 characters in 'gs://ab/m.tflite' "
            "(Cloud Storage bucket names are 3-63)",
        ),
        (
            ("--model", "gs://a/m.tflite"),
            "bucket name shorter than 3 characters in 'gs://a/m.tflite' "
            "(Cloud Storage bucket names are 3-63)",
        ),
        (
            ("--model", "gs://" + "b." * 112 + "c/m.tflite"),
            "bucket name longer than 222 characters in 'gs://" + "b." * 112 + "c/m.tflite'",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_invalid_settings(args: tuple[str, ...], message: str) -> None:
    assert_refused(run_deploy("--dry-run", "--project", PROJECT, *args), message)


@pytest.mark.parametrize("value", ["yes", "", "2", "on"])
def test_cpu_boost_environment_must_be_one_or_zero(value: str) -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, env={"DEPLOY_CPU_BOOST": value})
    if value == "":  # empty means unset: the default, on
        assert result.returncode == 0, result.stderr
        assert "--cpu-boost" in result.stdout
    else:
        assert_refused(result, f"DEPLOY_CPU_BOOST must be 1 (on) or 0 (off), got '{value}'")


def test_bad_setting_refused_without_dry_run_too(tmp_path) -> None:
    fake_dir = tmp_path / "bin"
    fake_gcloud.install(fake_dir)
    result = run_deploy(
        "--project",
        PROJECT,
        "--cpu",
        "0.5",
        path=f"{fake_dir}{os.pathsep}{os.environ['PATH']}",
    )
    assert_refused(
        result,
        "concurrency 4 needs at least 1 vCPU, got --cpu 0.5: "
        "raise --cpu to 1 or set --concurrency 1",
    )
    assert fake_gcloud.calls(fake_dir) == []


def test_no_project_anywhere() -> None:
    # The real gcloud, with an empty configuration, has no project either.
    assert_refused(
        run_deploy("--dry-run"),
        "no project: pass --project, set DEPLOY_PROJECT, or run "
        "'gcloud config set project PROJECT_ID'",
    )


def test_malformed_project() -> None:
    assert_refused(
        run_deploy("--dry-run", "--project", "My Project"),
        "project must be a project ID (6-30 lowercase letters, digits, hyphens), got 'My Project'",
    )


def _path_without_gcloud(tmp_path) -> str:
    """A PATH holding only the POSIX tools deploy.sh needs besides gcloud (no python3 either)."""
    bin_dir = tmp_path / "bin-no-gcloud"
    bin_dir.mkdir()
    for tool in ("dirname", "cat", "find", "wc", "tr", "od"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def test_gcloud_missing(tmp_path) -> None:
    assert_refused(
        run_deploy("--project", PROJECT, path=_path_without_gcloud(tmp_path)),
        "gcloud not found on PATH: install the Google Cloud CLI "
        "(https://cloud.google.com/sdk/docs/install)",
    )


def test_dry_run_needs_no_gcloud_when_project_given(tmp_path) -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, path=_path_without_gcloud(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gcloud functions deploy tflite-predict ")
    assert "command not found" not in result.stderr
    assert "\n# memory: not measured: python3 not found\n" in result.stderr


def test_bundled_model_missing(tmp_path) -> None:
    # A copy of the script beside no model: the check looks next to deploy.sh.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(DEPLOY, checkout / "deploy.sh")
    for name in ("main.py", "requirements.txt", ".gcloudignore"):
        (checkout / name).write_text("")
    result = run_deploy_at(checkout, "--dry-run", "--project", PROJECT)
    model = checkout / "model" / "quantized_model.tflite"
    assert_refused(
        result,
        f"model file not found: {model} (build it, or pass --model FILE or gs://BUCKET/OBJECT)",
    )
    # A gs:// model does not need the bundled file.
    ok = run_deploy_at(checkout, "--dry-run", "--project", PROJECT, "--model", "gs://b-1/m.tflite")
    assert ok.returncode == 0, ok.stderr


def test_source_incomplete(tmp_path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "model").mkdir(parents=True)
    (checkout / "model" / "quantized_model.tflite").write_bytes(b"TFL3")
    shutil.copy(DEPLOY, checkout / "deploy.sh")
    (checkout / "main.py").write_text("")
    (checkout / "requirements.txt").write_text("")
    assert_refused(
        run_deploy_at(checkout, "--dry-run", "--project", PROJECT),
        f"function source incomplete: {checkout}/.gcloudignore not found",
    )


def run_deploy_at(checkout, *args: str):
    """Run the deploy.sh copied into ``checkout``."""
    return run_offline([BASH, str(checkout / "deploy.sh"), *args], cwd=checkout)


def test_help_lists_every_setting() -> None:
    result = run_deploy("--help")
    assert result.returncode == 0
    text = result.stdout
    options = [
        "--name", "--project", "--region", "--runtime", "--service-account", "--memory", "--cpu",
        "--concurrency", "--min-instances", "--max-instances", "--timeout", "--cpu-boost",
        "--no-cpu-boost", "--model",
        "--upload", "--model-name", "--model-version", "--repository", "--upload-repository",
        "--pool-size", "--threads", "--workers",
        "--env",
        "--warmup", "--warmup-service-account", "--warmup-job", "--warmup-location",
        "--allow-unauthenticated", "--dry-run",
    ]  # fmt: skip
    for option in options:
        assert f"  {option} " in text or f"  {option}\n" in text, option
    # Every option the script parses is documented.
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", DEPLOY.read_text(), flags=re.MULTILINE))
    assert parsed <= set(options), parsed - set(options)
    for variable in re.findall(r"\$\{(DEPLOY_[A-Z_]+)", DEPLOY.read_text()):
        assert variable in text, variable


def test_warns_about_files_only_their_owner_can_read(tmp_path) -> None:
    """Source files are zipped with their modes; an owner-only model may be unreadable."""
    checkout = tmp_path / "checkout"
    (checkout / "model").mkdir(parents=True)
    # The real package: deploy.sh runs its memory estimate (serving/estimate.py) from it.
    shutil.copytree(DEPLOY.parent / "serving", checkout / "serving")
    shutil.copy(DEPLOY, checkout / "deploy.sh")
    for name in ("main.py", "requirements.txt", ".gcloudignore"):
        (checkout / name).write_text("")
    for path in checkout.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    model = checkout / "model" / "quantized_model.tflite"
    model.write_bytes(b"TFL3")
    model.chmod(0o600)
    result = run_deploy_at(checkout, "--dry-run", "--project", PROJECT)
    assert result.returncode == 0, result.stderr
    assert (
        f"deploy.sh: warning: {model} is not readable by others; the deployed function may "
        f"fail to read it (chmod a+r {model})\n"
    ) in result.stderr
    model.chmod(0o644)
    result = run_deploy_at(checkout, "--dry-run", "--project", PROJECT)
    assert "warning" not in result.stderr
