"""What the command refuses before any pipeline starts: one line, exit code 2, no output."""

from __future__ import annotations

import pytest

from tests.batch.conftest import SKIP_WITHOUT_BEAM, run_cli, run_in_process, write_jsonl

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)

PREFIX = "python -m batch: "


@pytest.fixture
def rows(tmp_path):
    return write_jsonl(tmp_path / "in" / "rows.jsonl", [[[[0.0]] * 8] * 8])


def refused(capsys, tmp_path, *args: str) -> str:
    out = tmp_path / "out"
    run = run_in_process(capsys, *args, output=out)
    assert run.code == 2, run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(PREFIX)
    assert not out.exists() or not any(out.iterdir())  # nothing written
    return lines[0][len(PREFIX) :]


@pytest.fixture
def common(tmp_path, rows, digits_model):
    """``common(**overrides)``: the arguments of a command that would run (the digits
    model, the rows, an output folder), with ``overrides`` by flag."""

    def make(**overrides: str) -> list[str]:
        given = {"--model": str(digits_model), "--input": str(rows)}
        given["--output"] = str(tmp_path / "out")
        given.update(overrides)
        return [part for flag, value in given.items() if value for part in (flag, value)]

    return make


def test_missing_model(capsys, tmp_path, common):
    missing = tmp_path / "nowhere.tflite"
    message = refused(capsys, tmp_path, *common(**{"--model": str(missing)}))
    assert message == f"--model {missing}: model file not found: {missing}"


def test_a_file_that_is_not_a_model(capsys, tmp_path, common):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all" * 8)
    message = refused(capsys, tmp_path, *common(**{"--model": str(bad)}))
    assert message.startswith(f"--model {bad}: ")
    assert "is not a TFLite flatbuffer" in message


def test_input_matching_nothing(capsys, tmp_path, common):
    pattern = str(tmp_path / "in" / "*.jsonl.gz")
    message = refused(capsys, tmp_path, *common(**{"--input": pattern}))
    assert message == f"--input {pattern}: matches no file"


def test_pictures_and_jsonl_in_one_pattern(capsys, tmp_path, common):
    (tmp_path / "in" / "a.png").write_bytes(b"")
    pattern = str(tmp_path / "in" / "*")
    message = refused(capsys, tmp_path, *common(**{"--input": pattern}))
    assert "matches pictures" in message
    assert "and other files" in message


def test_pictures_for_a_model_without_a_picture_input(capsys, tmp_path, models, common):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"")
    args = common(
        **{"--model": str(models / "multi.tflite"), "--input": str(tmp_path / "pics" / "*")},
    )
    message = refused(capsys, tmp_path, *args)
    assert "matches pictures, but signature 'serving_default' takes a [-1, 4], b [-1, 3]" in message


def test_unknown_signature(capsys, tmp_path, common):
    message = refused(capsys, tmp_path, *common(), "--signature", "nope")
    assert message.startswith("unknown signature 'nope'; the model's signatures are: ")


def test_unknown_option(capsys, tmp_path, common):
    message = refused(capsys, tmp_path, *common(), "--frobnicate=3")
    assert message == "unknown option --frobnicate (neither this command's nor Beam's)"


def test_missing_required_option(capsys, tmp_path, common):
    message = refused(capsys, tmp_path, *common(**{"--output": ""}))
    assert message == "the following arguments are required: --output"


def test_bad_runner(capsys, tmp_path, common):
    message = refused(capsys, tmp_path, *common(), "--runner", "SparkRunner")
    assert "argument --runner: invalid choice: 'SparkRunner'" in message


def test_bad_setting_in_the_environment(capsys, tmp_path, monkeypatch, common):
    monkeypatch.setenv("MAX_BATCH_SIZE", "0")
    message = refused(capsys, tmp_path, *common())
    assert "MAX_BATCH_SIZE" in message


def test_output_with_earlier_results(capsys, tmp_path, common):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions-00000-of-00001.jsonl").write_text("{}\n")
    run = run_in_process(capsys, *common(), output=out)
    assert run.code == 2
    assert run.stderr.strip() == (
        f"{PREFIX}--output {out}: already holds results ({out}/predictions-00000-of-00001.jsonl):"
        " give an empty folder or remove them"
    )
    assert [p.name for p in out.iterdir()] == ["predictions-00000-of-00001.jsonl"]


def test_dataflow_with_local_paths(capsys, tmp_path, common, digits_model):
    message = refused(capsys, tmp_path, *common(), "--runner", "DataflowRunner")
    assert message == f"--model {digits_model}: DataflowRunner workers read and write gs:// only"


def test_dataflow_without_project(capsys, tmp_path, common):
    gs = {
        "--model": "gs://m-bucket/a.tflite",
        "--input": "gs://i-bucket/*",
        "--output": "gs://o-bucket/x",
    }
    message = refused(capsys, tmp_path, *common(**gs), "--runner", "DataflowRunner")
    assert message == "DataflowRunner needs --project, --region, --temp_location"


def test_dataflow_options_beam_refuses(capsys, tmp_path, common):
    gs = {
        "--model": "gs://m-bucket/a.tflite",
        "--input": "gs://i-bucket/*",
        "--output": "gs://o-bucket/x",
    }
    dataflow = ("--runner", "DataflowRunner", "--project", "My Project", "--region", "europe-west1")
    # --dry_run: Beam's validator then skips its bucket checks, which would call Cloud Storage.
    args = (*common(**gs), *dataflow, "--temp_location", "gs://t-bucket/tmp")
    args = (*args, "--dry_run=True")
    message = refused(capsys, tmp_path, *args)
    assert message.startswith("Invalid Project ID (My Project).")


def test_the_command_exits_2_with_one_line(tmp_path, common):
    missing = tmp_path / "none.tflite"
    run = run_cli(*common(**{"--model": str(missing)}))
    assert run.code == 2
    assert run.stderr.strip().splitlines() == [
        f"{PREFIX}--model {missing}: model file not found: {missing}"
    ]
    assert not (tmp_path / "out").exists()
