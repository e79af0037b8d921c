"""deploy.sh --dry-run: the exact gcloud commands, in order, for the defaults and each option."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy import fake_gcloud
from tests.deploy.deploy_script import (
    PROJECT,
    REPO,
    TFLITE_HEADER,
    URL_REFERENCE,
    WARMUP_SA,
    boost_command,
    deploy_command,
    describe_command,
    dry_run,
    parse_commands,
    run_deploy,
    run_pasted,
    upload_command,
)

BUCKET_MODEL = "gs://demo-models/digits/v2/model.tflite"
# Quotes, expansions, a backslash and & (special in bash 5.2 pattern replacement).
AWKWARD = 'GREETING=it\'s a $HOME `x` & \\ "q"'


def test_defaults_deploy_boost_then_read_url() -> None:
    assert dry_run("--project", PROJECT) == [deploy_command(), boost_command(), describe_command()]


@pytest.mark.parametrize(
    ("args", "env", "on"),
    [
        (("--no-cpu-boost",), {}, False),
        ((), {"DEPLOY_CPU_BOOST": "0"}, False),
        ((), {"DEPLOY_CPU_BOOST": "1"}, True),
        (("--cpu-boost",), {"DEPLOY_CPU_BOOST": "0"}, True),
        (("--no-cpu-boost",), {"DEPLOY_CPU_BOOST": "1"}, False),
        (("--cpu-boost", "--no-cpu-boost"), {}, False),
    ],
)
def test_cpu_boost_opt_out_and_environment(args: tuple[str, ...], env: dict, on: bool) -> None:
    commands = dry_run("--project", PROJECT, *args, env=env)
    assert commands == [deploy_command(), boost_command(on=on), describe_command()]


def test_runs_nothing_and_says_so() -> None:
    result = run_deploy("--dry-run", "--project", PROJECT)
    assert result.returncode == 0
    assert "nothing was run" in result.stderr
    # Only commands on stdout: it can be saved and run as a script.
    assert all(
        line.startswith(("gcloud ", "FUNCTION_URL=$(gcloud "))
        for line in result.stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--name", "digits-v2"), {"name": "digits-v2"}),
        (("--region", "europe-west1"), {"region": "europe-west1"}),
        (("--runtime", "python312"), {"runtime": "python312"}),
        (("--memory", "2Gi"), {"memory": "2Gi"}),
        (("--cpu", "2"), {"cpu": "2"}),
        (("--concurrency", "8"), {"concurrency": 8}),
        (("--min-instances", "1"), {"min_instances": 1}),
        (("--max-instances", "3"), {"max_instances": 3}),
        (("--timeout", "5m"), {"timeout": "300s"}),
        (("--timeout", "90"), {"timeout": "90s"}),
        (("--pool-size", "2"), {"pool_size": 2, "concurrency": 2}),
        (("--pool-size", "2", "--concurrency", "6"), {"pool_size": 2, "concurrency": 6}),
        (("--threads", "2"), {"threads": 2}),
        # One gunicorn worker per whole vCPU by default; concurrency and pool split among them.
        (("--cpu", "2"), {"cpu": "2", "workers": 2}),
        (("--cpu", "4", "--concurrency", "6"), {"cpu": "4", "concurrency": 6, "workers": 4}),
        (("--cpu", "2", "--workers", "1"), {"cpu": "2", "workers": 1}),
        (("--model-name", "digits"), {"model_name": "digits"}),
        (("--model-version", "2024-06-01"), {"model_version": "2024-06-01"}),
        (("--allow-unauthenticated",), {"auth": "--allow-unauthenticated"}),
        (("--cpu", "0.5", "--concurrency", "1"), {"cpu": "0.5", "concurrency": 1}),
        (
            ("--env", "SERVING_BACKEND=litert", "--env", "MAX_REQUEST_BYTES=1048576"),
            {"env_vars": ["SERVING_BACKEND=litert", "MAX_REQUEST_BYTES=1048576"]},
        ),
        (
            ("--service-account", "runner@demo-project-1.iam.gserviceaccount.com"),
            {"extra": ["--run-service-account=runner@demo-project-1.iam.gserviceaccount.com"]},
        ),
        (("--model", BUCKET_MODEL), {"env_vars": [f"MODEL_PATH={BUCKET_MODEL}"]}),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_each_option_changes_only_its_flag(args: tuple[str, ...], expected: dict) -> None:
    commands = dry_run("--project", PROJECT, *args)
    name = expected.get("name", "tflite-predict")
    region = expected.get("region", "us-central1")
    assert commands == [
        deploy_command(**expected),
        boost_command(name, region),
        describe_command(name, region),
    ]


def test_equals_form_of_options() -> None:
    assert dry_run(f"--project={PROJECT}", "--memory=2Gi") == dry_run(
        "--project", PROJECT, "--memory", "2Gi"
    )


def test_environment_fallbacks() -> None:
    env = {
        "DEPLOY_PROJECT": PROJECT,
        "DEPLOY_FUNCTION_NAME": "env-fn",
        "DEPLOY_REGION": "asia-northeast1",
        "DEPLOY_RUNTIME": "python312",
        "DEPLOY_MEMORY": "512Mi",
        "DEPLOY_CPU": "2",
        "DEPLOY_CONCURRENCY": "3",
        "DEPLOY_MIN_INSTANCES": "1",
        "DEPLOY_MAX_INSTANCES": "2",
        "DEPLOY_TIMEOUT": "30s",
        "DEPLOY_MODEL": BUCKET_MODEL,
        "DEPLOY_MODEL_NAME": "m",
        "DEPLOY_MODEL_VERSION": "7",
        "DEPLOY_POOL_SIZE": "3",
        "DEPLOY_THREADS": "2",
        "DEPLOY_ENV": "SERVING_BACKEND=litert GCS_TIMEOUT_SECONDS=5",
    }
    expected = deploy_command(
        name="env-fn",
        region="asia-northeast1",
        runtime="python312",
        memory="512Mi",
        cpu="2",
        concurrency=3,
        min_instances=1,
        max_instances=2,
        timeout="30s",
        model_name="m",
        model_version="7",
        pool_size=3,
        threads=2,
        env_vars=[
            f"MODEL_PATH={BUCKET_MODEL}",
            "SERVING_BACKEND=litert",
            "GCS_TIMEOUT_SECONDS=5",
        ],
    )
    assert dry_run(env=env) == [
        expected,
        boost_command("env-fn", "asia-northeast1"),
        describe_command("env-fn", "asia-northeast1"),
    ]


def test_flag_beats_environment() -> None:
    commands = dry_run("--memory", "2Gi", env={"DEPLOY_PROJECT": PROJECT, "DEPLOY_MEMORY": "512Mi"})
    assert commands[0] == deploy_command(memory="2Gi")


def test_project_from_google_cloud_project() -> None:
    assert dry_run(env={"GOOGLE_CLOUD_PROJECT": PROJECT})[0] == deploy_command()


def test_project_from_gcloud_configuration() -> None:
    # CLOUDSDK_CORE_PROJECT is how `gcloud config get-value project` sees a configured project.
    assert dry_run(env={"CLOUDSDK_CORE_PROJECT": PROJECT})[0] == deploy_command()


def test_upload_bundled_model_first() -> None:
    commands = dry_run("--project", PROJECT, "--model", BUCKET_MODEL, "--upload")
    assert commands == [
        upload_command(REPO / "model" / "quantized_model.tflite", BUCKET_MODEL),
        deploy_command(env_vars=[f"MODEL_PATH={BUCKET_MODEL}"]),
        boost_command(),
        describe_command(),
    ]


def test_upload_given_file(tmp_path) -> None:
    model = tmp_path / "my model.tflite"
    model.write_bytes(TFLITE_HEADER)
    commands = dry_run("--project", PROJECT, "--upload", str(model), "--model", BUCKET_MODEL)
    assert commands[0] == upload_command(model, BUCKET_MODEL)
    assert commands[1] == deploy_command(env_vars=[f"MODEL_PATH={BUCKET_MODEL}"])


def _job_flags(schedule: str, location: str = "us-central1", deadline: str = "60s") -> list[str]:
    return [
        f"--project={PROJECT}",
        f"--location={location}",
        f"--schedule={schedule}",
        "--time-zone=Etc/UTC",
        f"--uri={URL_REFERENCE}/v2/health/ready",
        "--http-method=GET",
        f"--oidc-service-account-email={WARMUP_SA}",
        f"--oidc-token-audience={URL_REFERENCE}",
        f"--attempt-deadline={deadline}",
        "--description=Keeps tflite-predict warm (deploy.sh)",
    ]


def test_warmup_grants_invoker_then_creates_or_updates_job() -> None:
    schedule = "*/10 * * * *"
    commands = dry_run(
        "--project", PROJECT, "--warmup", schedule, "--warmup-service-account", WARMUP_SA
    )
    job = "tflite-predict-warmup"
    assert commands == [
        deploy_command(),
        boost_command(),
        describe_command(),
        [
            "gcloud",
            "functions",
            "add-invoker-policy-binding",
            "tflite-predict",
            f"--project={PROJECT}",
            "--region=us-central1",
            f"--member=serviceAccount:{WARMUP_SA}",
        ],
        [
            "gcloud",
            "scheduler",
            "jobs",
            "describe",
            job,
            f"--project={PROJECT}",
            "--location=us-central1",
            "--format=value(name)",
        ],
        ["gcloud", "scheduler", "jobs", "update", "http", job, *_job_flags(schedule)],
        ["gcloud", "scheduler", "jobs", "create", "http", job, *_job_flags(schedule)],
    ]


def test_warmup_job_name_location_and_deadline() -> None:
    commands = dry_run(
        "--project",
        PROJECT,
        "--timeout",
        "5s",
        "--warmup",
        "0 * * * *",
        "--warmup-service-account",
        WARMUP_SA,
        "--warmup-job",
        "keep-warm",
        "--warmup-location",
        "europe-west1",
    )
    # Cloud Scheduler's shortest attempt deadline is 15 s.
    flags = _job_flags("0 * * * *", location="europe-west1", deadline="15s")
    assert commands[-2] == ["gcloud", "scheduler", "jobs", "update", "http", "keep-warm", *flags]
    assert commands[-1] == ["gcloud", "scheduler", "jobs", "create", "http", "keep-warm", *flags]


def test_warmup_from_environment() -> None:
    env = {
        "DEPLOY_PROJECT": PROJECT,
        "DEPLOY_WARMUP": "*/5 * * * *",
        "DEPLOY_WARMUP_SERVICE_ACCOUNT": WARMUP_SA,
    }
    commands = dry_run(env=env)
    assert commands[-1][:6] == [
        "gcloud",
        "scheduler",
        "jobs",
        "create",
        "http",
        "tflite-predict-warmup",
    ]
    assert "--schedule=*/5 * * * *" in commands[-1]


def test_output_quotes_awkward_values() -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, "--env", AWKWARD)
    deploy_line = result.stdout.splitlines()[0]
    assert shlex.split(deploy_line)[-1].endswith("," + AWKWARD)


def test_output_runs_as_pasted(tmp_path) -> None:
    """The printed text is a working script: run it, every gcloud call arrives as printed."""
    args = ("--project", PROJECT, "--model", BUCKET_MODEL, "--upload")
    args += ("--warmup", "*/10 * * * *", "--warmup-service-account", WARMUP_SA)
    args += ("--env", AWKWARD)
    script = run_deploy("--dry-run", *args).stdout
    result, fake_dir = run_pasted(script, tmp_path)
    assert result.returncode == 0, result.stderr
    printed = [
        [arg.replace(URL_REFERENCE, fake_gcloud.FUNCTION_URL) for arg in argv]
        for argv in parse_commands(script)
    ]
    # The job does not exist yet, so the script creates it rather than updating it.
    update = printed.pop(-2)
    assert update[3] == "update"
    calls = fake_gcloud.calls(fake_dir)
    assert calls == [argv[1:] for argv in printed]
    assert calls[1][-1].endswith("," + AWKWARD)


def test_environment_fallbacks_for_upload_warmup_and_mode(tmp_path) -> None:
    model = tmp_path / "digits.tflite"
    model.write_bytes(TFLITE_HEADER)
    runner = "runner@demo-project-1.iam.gserviceaccount.com"
    env = {
        "DEPLOY_PROJECT": PROJECT,
        "DEPLOY_DRY_RUN": "1",
        "DEPLOY_MODEL": BUCKET_MODEL,
        "DEPLOY_UPLOAD": str(model),
        "DEPLOY_SERVICE_ACCOUNT": runner,
        "DEPLOY_WARMUP": "0 */2 * * *",
        "DEPLOY_WARMUP_SERVICE_ACCOUNT": WARMUP_SA,
        "DEPLOY_WARMUP_JOB": "nightly-warm",
        "DEPLOY_WARMUP_LOCATION": "europe-west1",
    }
    result = run_deploy(env=env)  # no --dry-run flag: DEPLOY_DRY_RUN=1 alone
    assert result.returncode == 0, result.stderr
    commands = parse_commands(result.stdout)
    assert commands[0] == upload_command(model, BUCKET_MODEL)
    assert commands[1] == deploy_command(
        env_vars=[f"MODEL_PATH={BUCKET_MODEL}"], extra=[f"--run-service-account={runner}"]
    )
    create = commands[-1]
    assert create[:6] == ["gcloud", "scheduler", "jobs", "create", "http", "nightly-warm"]
    assert "--location=europe-west1" in create
    assert "--schedule=0 */2 * * *" in create


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ("512Mi", 536_870_912),
        ("1Gi", 1_073_741_824),
        ("2G", 2_000_000_000),
        ("700M", 700_000_000),
        ("262144Ki", 268_435_456),
        ("999999k", 999_999_000),
    ],
)
def test_the_memory_budget_follows_the_instance_memory(memory: str, expected: int) -> None:
    """--memory reaches the function as MEMORY_LIMIT_BYTES, in bytes as Cloud Run counts."""
    (deploy, *_) = dry_run("--project", PROJECT, "--memory", memory)
    (flag,) = [f for f in deploy if f.startswith("--set-env-vars=")]
    assert f"MEMORY_LIMIT_BYTES={expected}" in flag.split("=", 1)[1].split(",")


def memory_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith("# memory: ")]
    return line.removeprefix("# memory: ")


def test_the_dry_run_prints_the_memory_estimate_of_the_model(digits_model) -> None:
    """The digits model (as the bundled example is built), then whatever model is bundled."""
    result = run_deploy("--dry-run", "--project", PROJECT, "--model", str(digits_model))
    assert result.returncode == 0, result.stderr
    assert memory_line(result.stderr) == (
        "about 246 MiB (46 MiB runtime, 0.2 MiB weights, 200 MiB for one JSON request at the "
        "body limit) of 1024 MiB"
    )
    bundled = run_deploy("--dry-run", "--project", PROJECT)
    assert bundled.returncode == 0, bundled.stderr
    assert re.fullmatch(
        r"about \d+ MiB \(46 MiB runtime, [\d.]+ MiB weights, 200 MiB for one JSON request at "
        r"the body limit\) of 1024 MiB",
        memory_line(bundled.stderr),
    )


def test_a_memory_too_small_for_one_request_at_the_body_limit_is_refused(digits_model) -> None:
    model = ("--model", str(digits_model))
    result = run_deploy("--dry-run", "--project", PROJECT, "--memory", "128Mi", *model)
    assert result.returncode == 2
    assert result.stdout == ""  # refused before any command
    assert result.stderr == (
        "deploy.sh: --memory 128Mi: 128 MiB cannot hold the model plus one request at the body "
        "limit: about 246 MiB (46 MiB runtime, 0.2 MiB weights, 200 MiB for one JSON request "
        "at the body limit); use --memory 512Mi or more, or a smaller body limit "
        "(--env MAX_REQUEST_BYTES=...)\n"
    )
    # A smaller body limit makes the same memory enough.
    smaller = run_deploy(
        "--dry-run", "--project", PROJECT, "--memory", "128Mi", *model,
        "--env", "MAX_REQUEST_BYTES=1000000",
    )  # fmt: skip
    assert smaller.returncode == 0, smaller.stderr
    assert memory_line(smaller.stderr).startswith("about 65 MiB (")


def test_an_uploaded_model_is_counted_twice_weights_and_download(tmp_path) -> None:
    model = tmp_path / "big.tflite"
    with model.open("wb") as f:  # sparse after the header: the estimate reads only the size
        f.write(TFLITE_HEADER)
        f.truncate(600 * 2**20)
    result = run_deploy(
        "--dry-run", "--project", PROJECT, "--model", BUCKET_MODEL, "--upload", str(model)
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "deploy.sh: --memory 1Gi: 1024 MiB cannot hold the model plus one request at the body "
        "limit: about 1446 MiB (46 MiB runtime, 600 MiB weights, 600 MiB downloaded model, "
    )
    assert "use --memory 2Gi or more" in result.stderr
    fits = run_deploy(
        "--dry-run", "--project", PROJECT, "--model", BUCKET_MODEL, "--upload", str(model),
        "--memory", "2Gi",
    )  # fmt: skip
    assert fits.returncode == 0, fits.stderr
    assert memory_line(fits.stderr).endswith(" of 2048 MiB")


def test_a_model_only_in_cloud_storage_is_not_measured_and_says_how_to() -> None:
    result = run_deploy("--dry-run", "--project", PROJECT, "--model", BUCKET_MODEL)
    assert result.returncode == 0, result.stderr
    assert memory_line(result.stderr) == (
        f"not measured: {BUCKET_MODEL} is not uploaded from here (pass --upload FILE to check it)"
    )


def test_the_memory_page_shows_a_real_refusal() -> None:
    """docs/memory.md's deploy.sh example is what deploy.sh answers."""
    page = (REPO / "docs" / "memory.md").read_text()
    block = page.split("```\n$ ", 1)[1].split("\n```", 1)[0]
    command, expected = block.split("\n", 1)
    argv = shlex.split(command)
    assert argv[0] == "./deploy.sh"
    result = run_deploy(*argv[1:])
    assert result.returncode == 2
    assert result.stderr == expected + "\n"
