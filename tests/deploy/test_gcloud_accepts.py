"""The real gcloud parses every command deploy.sh generates (argument parsing, not the network).

With no credentials in an isolated configuration, a command whose arguments gcloud accepts gets
as far as looking for an account and stops there; a flag it does not know fails earlier with
"unrecognized arguments". No traffic leaves loopback (see offline_gcloud).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.deploy_script import PROJECT, WARMUP_SA, dry_run
from tests.deploy.offline_gcloud import GCLOUD, NO_CREDENTIALS, NO_GCLOUD_REASON, run_offline

pytestmark = [pytest.mark.skipif(GCLOUD is None, reason=NO_GCLOUD_REASON), pytest.mark.slow]

SAMPLE_URL = "https://tflite-predict-abc123-uc.a.run.app"
PARSE_ERRORS = (
    "unrecognized arguments",
    "argument --",
    "Invalid value",
    "is not a valid",
    "must be specified",
)


def real_gcloud(argv: list[str], cwd: Path | None = None):
    assert argv[0] == "gcloud"
    args = [arg.replace("${FUNCTION_URL}", SAMPLE_URL) for arg in argv[1:]]
    return run_offline([GCLOUD, *args], cwd=cwd)


def assert_parsed_then_needs_credentials(argv: list[str]) -> None:
    result = real_gcloud(argv)
    assert result.returncode != 0, "gcloud succeeded without credentials?"
    for error in PARSE_ERRORS:
        assert error not in result.stderr, result.stderr
    assert NO_CREDENTIALS in result.stderr, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--allow-unauthenticated",),
        ("--cpu", "0.5", "--concurrency", "1", "--memory", "512Mi", "--timeout", "5m"),
        ("--cpu", "2000m", "--memory", "4Gi", "--min-instances", "1", "--max-instances", "2"),
        ("--service-account", "runner@demo-project-1.iam.gserviceaccount.com"),
        ("--model", "gs://demo-models/v2/model.tflite", "--env", "SERVING_BACKEND=litert"),
    ],
    ids=lambda args: " ".join(args) or "defaults",
)
def test_gcloud_accepts_deploy_arguments(args: tuple[str, ...]) -> None:
    deploy = dry_run("--project", PROJECT, *args)[0]
    assert deploy[:3] == ["gcloud", "functions", "deploy"]
    assert_parsed_then_needs_credentials(deploy)


def test_gcloud_accepts_every_other_generated_command() -> None:
    commands = dry_run(
        "--project",
        PROJECT,
        "--model",
        "gs://demo-models/m.tflite",
        "--upload",
        "--warmup",
        "*/10 * * * *",
        "--warmup-service-account",
        WARMUP_SA,
    )
    verbs = {tuple(argv[1:4]) for argv in commands}
    assert ("storage", "cp", str(commands[0][3])) in verbs
    assert ("scheduler", "jobs", "create") in verbs
    assert ("scheduler", "jobs", "update") in verbs
    assert ("run", "services", "update") in verbs
    for argv in commands:
        if argv[1:3] != ["functions", "deploy"]:
            assert_parsed_then_needs_credentials(argv)


def test_gcloud_accepts_turning_the_cpu_boost_off() -> None:
    (boost,) = [argv for argv in dry_run("--project", PROJECT, "--no-cpu-boost") if "run" in argv]
    assert boost[:4] == ["gcloud", "run", "services", "update"]
    assert boost[-1] == "--no-cpu-boost"
    assert_parsed_then_needs_credentials(boost)


def test_an_unknown_flag_is_told_apart() -> None:
    """Control: the check above does fail when gcloud rejects an argument."""
    deploy = dry_run("--project", PROJECT)[0]
    result = real_gcloud([*deploy, "--concurrency-per-cpu=4"])
    assert result.returncode == 2
    assert "unrecognized arguments: --concurrency-per-cpu=4" in result.stderr
    assert NO_CREDENTIALS not in result.stderr


def test_gcloud_accepts_the_repository_commands(tmp_path: Path) -> None:
    """The copy of a local repository, and the listing the real run checks memory with."""
    folder = tmp_path / "models"
    (folder / "digits" / "1").mkdir(parents=True)
    (folder / "digits" / "1" / "model.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3")
    repository = "gs://demo-models/repo"
    args = ("--repository", repository, "--upload-repository", str(folder))
    (rsync, *_) = dry_run("--project", PROJECT, *args)
    assert rsync[1:3] == ["storage", "rsync"]
    assert_parsed_then_needs_credentials(rsync)
    listing = ["gcloud", "storage", "ls", "-l", f"{repository}/*/*/model.tflite"]
    assert_parsed_then_needs_credentials([*listing, f"--project={PROJECT}"])
