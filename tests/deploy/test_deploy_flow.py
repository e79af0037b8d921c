"""deploy.sh for real, with a fake gcloud at the cloud boundary: order, URL, idempotent warm-up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.deploy import fake_gcloud
from tests.deploy.deploy_script import (
    PROJECT,
    WARMUP_SA,
    boost_command,
    deploy_command,
    deploy_with,
    describe_command,
    dry_run,
)
from tests.server import running_server

WARMUP = ("--warmup", "*/10 * * * *", "--warmup-service-account", WARMUP_SA)


def with_url(commands: list[list[str]]) -> list[list[str]]:
    """Dry-run argv lists with the URL the fake gcloud reports, minus the leading 'gcloud'."""
    url = fake_gcloud.FUNCTION_URL
    return [[arg.replace("${FUNCTION_URL}", url) for arg in argv[1:]] for argv in commands]


def test_deploy_prints_url_and_authenticated_curl(fake_dir: Path) -> None:
    result = deploy_with(fake_dir, "--project", PROJECT)
    assert result.returncode == 0, result.stderr
    assert fake_gcloud.calls(fake_dir) == [
        deploy_command()[1:],
        boost_command()[1:],
        describe_command()[1:],
    ]
    url = fake_gcloud.FUNCTION_URL
    assert f"\n  {url}\n" in result.stdout
    auth = '-H "Authorization: Bearer $(gcloud auth print-identity-token)"'
    assert f"curl {auth} {url}/v2/health/ready" in result.stdout
    assert f"{url}/v1/models/model:predict" in result.stdout
    assert f"curl {auth} {url}/v2/models/model\n" in result.stdout
    # Each command is echoed before it runs, quoted as in --dry-run.
    assert "+ gcloud functions deploy tflite-predict --gen2" in result.stderr


def test_public_deploy_prints_curl_without_token(fake_dir: Path) -> None:
    result = deploy_with(fake_dir, "--project", PROJECT, "--allow-unauthenticated")
    assert result.returncode == 0, result.stderr
    assert "--allow-unauthenticated" in fake_gcloud.calls(fake_dir)[0]
    assert "print-identity-token" not in result.stdout
    assert f"curl {fake_gcloud.FUNCTION_URL}/v2/health/ready" in result.stdout


def test_runs_exactly_what_dry_run_prints(fake_dir: Path) -> None:
    args = ("--project", PROJECT, "--model", "gs://demo-models/m.tflite", "--upload", *WARMUP)
    result = deploy_with(fake_dir, *args)
    assert result.returncode == 0, result.stderr
    printed = with_url(dry_run(*args))
    update = printed.pop(-2)  # first run: the job does not exist, so it is created
    assert update[2] == "update"
    assert fake_gcloud.calls(fake_dir) == printed
    assert "Warm-up: scheduler job tflite-predict-warmup" in result.stdout


def test_warmup_second_run_updates_the_job(fake_dir: Path) -> None:
    first = deploy_with(fake_dir, "--project", PROJECT, *WARMUP)
    assert first.returncode == 0, first.stderr
    before = len(fake_gcloud.calls(fake_dir))
    second = deploy_with(fake_dir, "--project", PROJECT, *WARMUP)
    assert second.returncode == 0, second.stderr
    calls = fake_gcloud.calls(fake_dir)[before:]
    verbs = [call[:3] for call in calls]
    assert verbs == [
        ["functions", "deploy", "tflite-predict"],
        ["run", "services", "update"],
        ["functions", "describe", "tflite-predict"],
        ["functions", "add-invoker-policy-binding", "tflite-predict"],
        ["scheduler", "jobs", "describe"],
        ["scheduler", "jobs", "update"],
    ]
    created = fake_gcloud.calls(fake_dir)[before - 1]
    assert created[:3] == ["scheduler", "jobs", "create"]
    # Same job, same settings: the update carries the create's flags.
    assert calls[-1][4:] == created[4:]


def test_warmup_stops_on_lookup_error_other_than_not_found(fake_dir: Path) -> None:
    result = deploy_with(fake_dir, "--project", PROJECT, *WARMUP, env={"FAKE_GCLOUD_DENY": "1"})
    assert result.returncode == 1
    assert "PERMISSION_DENIED" in result.stderr
    assert "could not look up scheduler job tflite-predict-warmup" in result.stderr
    verbs = [call[:3] for call in fake_gcloud.calls(fake_dir)]
    assert ["scheduler", "jobs", "create"] not in verbs
    assert ["scheduler", "jobs", "update"] not in verbs


def test_project_from_gcloud_config(fake_dir: Path) -> None:
    result = deploy_with(fake_dir, env={"FAKE_GCLOUD_PROJECT": PROJECT})
    assert result.returncode == 0, result.stderr
    calls = fake_gcloud.calls(fake_dir)
    assert calls[0] == ["config", "get-value", "project"]
    assert calls[1] == deploy_command()[1:]


def test_failed_deploy_stops_with_its_status(tmp_path: Path) -> None:
    bin_dir = tmp_path / "failing"
    fake_gcloud.install_failing(bin_dir, "ERROR: (gcloud.functions.deploy) build failed", 7)
    result = deploy_with(bin_dir, "--project", PROJECT)
    assert result.returncode == 7
    assert "build failed" in result.stderr
    assert "Deployed" not in result.stdout


def test_printed_example_request_is_served(fake_dir: Path, digits_model: Path) -> None:
    """The example body deploy.sh prints for the bundled example gets 10 class probabilities
    from the real function serving the digits model (as the example is built)."""
    result = deploy_with(fake_dir, "--project", PROJECT)
    body = re.search(r"-d '([^']+)'", result.stdout)
    assert body, result.stdout
    path = re.search(r"\.run\.app(/v1/models/model:predict)", result.stdout)
    assert path, result.stdout
    with running_server(digits_model) as server:
        response = requests.post(
            server.url + path.group(1),
            data=body.group(1),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    (probabilities,) = response.json()["predictions"]
    assert len(probabilities) == 10
    assert sum(probabilities) == pytest.approx(1.0, abs=0.05)
