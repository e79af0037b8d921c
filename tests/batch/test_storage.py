"""Model, input and output in Cloud Storage (the storage emulator), as the command runs."""

from __future__ import annotations

import json
import re
import sys
from urllib.parse import quote

import numpy as np
import pytest
import requests

from tests.batch.conftest import SKIP_WITHOUT_BEAM, Run
from tests.conftest import REPO
from tests.deploy.offline_gcloud import run_offline
from tests.gcs_emulator import connections_to
from tests.reference import reference_predict

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)

RNG = np.random.default_rng(20)


def listed(emulator, bucket: str, prefix: str) -> list[str]:
    r = requests.get(
        f"{emulator.host}/storage/v1/b/{bucket}/o", params={"prefix": prefix}, timeout=10
    )
    r.raise_for_status()
    return sorted(item["name"] for item in r.json().get("items", []))


def downloaded_lines(emulator, bucket: str, prefix: str, name: str) -> list[dict]:
    """Every line of ``gs://bucket/prefix/name-*`` shards, read with plain HTTP."""
    lines = []
    for obj in listed(emulator, bucket, f"{prefix}/{name}-"):
        r = requests.get(
            f"{emulator.host}/download/storage/v1/b/{bucket}/o/{quote(obj, safe='')}",
            params={"alt": "media"},
            timeout=10,
        )
        r.raise_for_status()
        lines += [json.loads(line) for line in r.text.splitlines()]
    return lines


def offline(*args: str, env: dict[str, str]) -> Run:
    """``python -m batch ARGS`` with no credentials and no route off loopback."""
    result = run_offline([sys.executable, "-m", "batch", *args], cwd=REPO, env=env, timeout=300)
    return Run(result.returncode, result.stdout, result.stderr)


def test_jsonl_and_pictures_from_and_to_cloud_storage(
    models, storage_emulator, metadata_trap, tmp_path, digits_model
):
    emulator = storage_emulator
    emulator.upload("batch-models", "digits/int8.tflite", (models / "int8.tflite").read_bytes())
    emulator.upload("batch-models", "bundled.tflite", digits_model.read_bytes())
    x = RNG.random((6, 8, 8, 1), dtype=np.float32)
    rows = [row.tolist() for row in x]
    for part in (0, 1):
        body = "".join(json.dumps(r) + "\n" for r in rows[part * 3 : part * 3 + 3])
        emulator.upload("batch-in", f"rows/part-{part}.jsonl", (body + "[1]\n").encode())
    examples = sorted((REPO / "model" / "examples").glob("*.png"))
    for path in examples:
        emulator.upload("batch-in", f"digits/{path.name}", path.read_bytes())
    emulator.create_bucket("batch-out")
    trap = f"127.0.0.1:{metadata_trap.getsockname()[1]}"
    # Under strace where it works: run_offline fails the test on any non-loopback address.
    env = {
        "GCE_METADATA_HOST": trap,
        "GCE_METADATA_IP": trap,
        "STORAGE_EMULATOR_HOST": emulator.host,
    }

    jsonl = offline(
        "--model", "gs://batch-models/digits/int8.tflite",
        "--input", "gs://batch-in/rows/*.jsonl",
        "--output", "gs://batch-out/rows",
        env=env,
    )  # fmt: skip
    assert jsonl.code == 0, jsonl.stderr
    assert "6 predicted, 2 errors" in jsonl.summary
    names = listed(emulator, "batch-out", "rows/")
    assert names, "no output written"
    assert all(re.fullmatch(r"rows/(predictions|errors)-\d{5}-of-\d{5}\.jsonl", n) for n in names)
    got = {
        json.dumps(line["instance"]): line["prediction"]
        for line in downloaded_lines(emulator, "batch-out", "rows", "predictions")
    }
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    for row, want in zip(rows, expected, strict=True):
        np.testing.assert_allclose(got[json.dumps(row)], want, rtol=0, atol=1e-6)
    errors = downloaded_lines(emulator, "batch-out", "rows", "errors")
    assert sorted(e["error"] for e in errors) == [
        f"gs://batch-in/rows/part-{part}.jsonl: input 'pixels': expected shape [-1, 8, 8, 1], "
        "received [1, 1]"
        for part in (0, 1)
    ]

    pictures = offline(
        "--model", "gs://batch-models/bundled.tflite",
        "--input", "gs://batch-in/digits/*.png",
        "--output", "gs://batch-out/digits/",
        env=env,
    )  # fmt: skip
    assert pictures.code == 0, pictures.stderr
    assert f"{len(examples)} predicted, 0 errors" in pictures.summary
    lines = downloaded_lines(emulator, "batch-out", "digits", "predictions")
    assert sorted(line["instance"]["uri"] for line in lines) == [
        f"gs://batch-in/digits/{p.name}" for p in examples
    ]
    for line in lines:
        assert line["labels"][0][0] == line["instance"]["uri"].rsplit("/", 1)[1][:-4]
    assert downloaded_lines(emulator, "batch-out", "digits", "errors") == []
    assert connections_to(metadata_trap) == 0  # no credentials lookup left for the emulator
