"""serving.repository.config: models.json into typed policies, every error named exactly."""

from __future__ import annotations

import json

import pytest

from serving.repository.config import PolicyKind, VersionPolicy, parse
from serving.repository.errors import RepositoryConfigError

FILE = "repo/models.json"


def test_policies_and_labels() -> None:
    found = parse(
        json.dumps(
            {
                "models": {
                    "a": {"versions": "all"},
                    "b": {"versions": [3, 1], "labels": {"stable": 1, "canary": 3}},
                    "c": {},
                }
            }
        ),
        FILE,
    )
    assert found.file == FILE
    assert found.models["a"].policy == VersionPolicy(PolicyKind.ALL)
    assert found.models["b"].policy == VersionPolicy(PolicyKind.SPECIFIC, (1, 3))
    assert dict(found.models["b"].labels) == {"stable": 1, "canary": 3}
    assert found.models["c"].policy == VersionPolicy(PolicyKind.LATEST)
    assert dict(found.errors) == {}


def test_the_parsed_config_is_frozen() -> None:
    found = parse('{"models": {"a": {"labels": {"stable": 1}}}}', FILE)
    with pytest.raises(TypeError):
        found.models["a"].labels["stable"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        found.models["a"].policy = VersionPolicy(PolicyKind.ALL)  # type: ignore[misc]


def test_policy_select() -> None:
    present = (1, 2, 5)
    assert VersionPolicy(PolicyKind.LATEST).select(present) == (5,)
    assert VersionPolicy(PolicyKind.ALL).select(present) == (1, 2, 5)
    assert VersionPolicy(PolicyKind.SPECIFIC, (2, 4)).select(present) == (2,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{",
            "repo/models.json: the file: expected JSON, received Expecting property name "
            "enclosed in double quotes at line 1 column 2",
        ),
        (
            b"\xff\xfe{",
            "repo/models.json: the file: expected UTF-8 JSON, received undecodable "
            "bytes (invalid start byte)",
        ),
        (
            "[1, 2]",
            'repo/models.json: the top level: expected an object {"models": {...}}, '
            "received [1, 2]",
        ),
        (
            '{"model": {}}',
            'repo/models.json: model: expected only the key "models", received an unknown key',
        ),
        (
            '{"models": []}',
            "repo/models.json: models: expected an object of model names, received []",
        ),
        (
            '{"models": {"../x": {}}}',
            "repo/models.json: models.../x: expected a model name, "
            "received model name '../x' is not one URL path segment: it must be 1-128 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit",
        ),
    ],
)
def test_errors_in_the_file_as_a_whole(text: str | bytes, message: str) -> None:
    with pytest.raises(RepositoryConfigError) as err:
        parse(text, FILE)
    assert err.value.status_code == 503
    assert str(err.value) == message
    assert err.value.file == FILE


@pytest.mark.parametrize(
    ("entry", "key", "expected", "received"),
    [
        ([], "models.m", 'an object {"versions": ..., "labels": ...}', "[]"),
        (
            {"version": "all"},
            "models.m.version",
            'only the keys "versions" and "labels"',
            "an unknown key",
        ),
        (
            {"versions": "newest"},
            "models.m.versions",
            '"latest", "all" or a list of distinct version numbers',
            '"newest"',
        ),
        (
            {"versions": []},
            "models.m.versions",
            '"latest", "all" or a list of distinct version numbers',
            "[]",
        ),
        (
            {"versions": [1, 1]},
            "models.m.versions",
            '"latest", "all" or a list of distinct version numbers',
            "[1, 1]",
        ),
        (
            {"versions": ["2"]},
            "models.m.versions",
            '"latest", "all" or a list of distinct version numbers',
            '"2"',
        ),
        (
            {"versions": [0]},
            "models.m.versions",
            '"latest", "all" or a list of distinct version numbers',
            "0",
        ),
        (
            {"versions": [True]},
            "models.m.versions",
            '"latest", "all" or a list of distinct version numbers',
            "true",
        ),
        ({"labels": [1]}, "models.m.labels", "an object of label: version", "[1]"),
        ({"labels": {"stable": "1"}}, "models.m.labels.stable", "a version number", '"1"'),
        ({"labels": {"stable": 1.5}}, "models.m.labels.stable", "a version number", "1.5"),
        (
            {"labels": {"a/b": 1}},
            "models.m.labels.a/b",
            "a version label",
            "version label 'a/b' is not one URL path segment: it must be 1-128 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit",
        ),
        (
            {"versions": [1, 2], "labels": {"canary": 3}},
            "models.m.labels.canary",
            "one of the versions the policy serves ([1, 2])",
            "3",
        ),
    ],
)
def test_errors_in_one_entry_stay_with_that_model(
    entry: object, key: str, expected: str, received: str
) -> None:
    found = parse(json.dumps({"models": {"m": entry, "ok": {"versions": "all"}}}), FILE)
    assert list(found.models) == ["ok"]
    error = found.errors["m"]
    assert error.status_code == 503
    assert (error.file, error.key, error.expected, error.received) == (
        FILE,
        key,
        expected,
        received,
    )
    assert str(error) == f"{FILE}: {key}: expected {expected}, received {received}"


def test_long_values_are_shortened_in_messages() -> None:
    found = parse(json.dumps({"models": {"m": {"versions": "x" * 100}}}), FILE)
    assert found.errors["m"].received == '"' + "x" * 56 + "..."
