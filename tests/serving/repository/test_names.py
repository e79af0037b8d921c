"""serving.repository.names: one path segment, never a way out of the repository."""

from __future__ import annotations

import pytest

from serving.repository.names import InvalidSegment, Segment, check, version_number


@pytest.mark.parametrize("name", ["digits", "Digits-2", "a", "mobilenet_v2.int8", "9lives"])
def test_names_that_are_one_path_segment(name: str) -> None:
    assert check(Segment.MODEL, name) == name
    assert check(Segment.LABEL, name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../etc",
        "a/b",
        "/abs",
        "a%2Fb",
        "%2e%2e",
        "a\\b",
        " a",
        "a ",
        ".hidden",
        "-flag",
        "a:b",
        "é",
        "a" * 129,
        None,
        3,
    ],
)
def test_names_refused_with_the_rule(name: object) -> None:
    with pytest.raises(InvalidSegment) as err:
        check(Segment.MODEL, name)
    assert err.value.status_code == 400
    assert str(err.value) == (
        f"model name {name!r} is not one URL path segment: it must be 1-128 letters, digits, "
        "'.', '_' or '-', starting with a letter or digit"
    )


@pytest.mark.parametrize(
    ("value", "number"), [("1", 1), (7, 7), ("42", 42), ("9" * 18, 10**18 - 1)]
)
def test_versions(value: object, number: int) -> None:
    assert version_number(value) == number


@pytest.mark.parametrize("value", ["0", "01", "-1", "1.0", "", "one", "1e3", 0, -2, True, "9" * 19])
def test_versions_refused(value: object) -> None:
    with pytest.raises(InvalidSegment) as err:
        version_number(value)
    assert err.value.status_code == 400
    assert str(err.value) == (
        f"version {value!r} is not a positive integer (1 to 18 digits, no leading zero)"
    )
