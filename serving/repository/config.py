"""``models.json``: which versions of each model are served, and the labels naming them.

::

    {"models": {"digits": {"versions": [1, 3], "labels": {"stable": 1, "canary": 3}}}}

``versions`` is a :class:`PolicyKind`: ``"latest"`` (the highest version only, TF
Serving's default, also what a model the file does not name gets), ``"all"``, or a list
of version numbers. ``labels`` map a label to one of the served versions (checked once
the versions present are known: :mod:`serving.repository.catalog`).

A problem with the file as a whole (not JSON, not an object, an unknown top-level key, a
model name that breaks the name rule) is raised; a problem with one model's entry is kept
for that model only, so the others are served as configured.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from serving.repository.errors import RepositoryConfigError
from serving.repository.names import InvalidSegment, Segment, check, version_number

CONFIG_FILE = "models.json"
_TOP_KEYS = ("models",)
_MODEL_KEYS = ("versions", "labels")


class PolicyKind(enum.Enum):
    """Which versions a model serves (TF Serving's ``model_version_policy``)."""

    LATEST = "latest"
    ALL = "all"
    SPECIFIC = "specific"


@dataclass(frozen=True)
class VersionPolicy:
    """A policy kind, and for ``SPECIFIC`` the versions it names (ascending)."""

    kind: PolicyKind
    versions: tuple[int, ...] = ()

    def select(self, present: tuple[int, ...]) -> tuple[int, ...]:
        """The served versions among ``present`` (ascending); a named absent one is kept
        out here and reported by the catalog."""
        if self.kind is PolicyKind.LATEST:
            return present[-1:]
        if self.kind is PolicyKind.ALL:
            return present
        return tuple(v for v in self.versions if v in present)

    def describe(self) -> str:
        if self.kind is PolicyKind.SPECIFIC:
            return json.dumps(list(self.versions))
        return json.dumps(self.kind.value)


LATEST = VersionPolicy(PolicyKind.LATEST)


@dataclass(frozen=True)
class ModelConfig:
    """One model's entry: its version policy and labels (label -> version)."""

    policy: VersionPolicy = LATEST
    labels: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


DEFAULT = ModelConfig()


@dataclass(frozen=True)
class RepositoryConfig:
    """The parsed file: good entries, and the entries that could not be used, by model."""

    file: str | None = None
    models: Mapping[str, ModelConfig] = field(default_factory=lambda: MappingProxyType({}))
    errors: Mapping[str, RepositoryConfigError] = field(
        default_factory=lambda: MappingProxyType({})
    )


def parse(text: str | bytes, file: str) -> RepositoryConfig:
    """Parse ``models.json``'s text (``file`` names it in messages).

    Raises:
        RepositoryConfigError: the file as a whole cannot be used.
    """
    try:
        # Decoded here: json.loads would guess UTF-16 or UTF-32 from the first bytes.
        document = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError as e:
        raise RepositoryConfigError(
            file, "the file", "UTF-8 JSON", f"undecodable bytes ({e.reason})"
        ) from e
    except json.JSONDecodeError as e:
        raise RepositoryConfigError(
            file, "the file", "JSON", f"{e.msg} at line {e.lineno} column {e.colno}"
        ) from e
    if not isinstance(document, dict):
        raise RepositoryConfigError(
            file, "the top level", 'an object {"models": {...}}', _shown(document)
        )
    unknown = [key for key in document if key not in _TOP_KEYS]
    if unknown:
        raise RepositoryConfigError(file, unknown[0], 'only the key "models"', "an unknown key")
    entries = document.get("models", {})
    if not isinstance(entries, dict):
        raise RepositoryConfigError(file, "models", "an object of model names", _shown(entries))
    models: dict[str, ModelConfig] = {}
    errors: dict[str, RepositoryConfigError] = {}
    for name, entry in entries.items():
        _segment(file, f"models.{name}", Segment.MODEL, name)
        try:
            models[name] = _model(file, f"models.{name}", entry)
        except RepositoryConfigError as e:
            errors[name] = e
    return RepositoryConfig(file, MappingProxyType(models), MappingProxyType(errors))


def _model(file: str, where: str, entry: Any) -> ModelConfig:
    if not isinstance(entry, dict):
        raise RepositoryConfigError(
            file, where, 'an object {"versions": ..., "labels": ...}', _shown(entry)
        )
    unknown = [key for key in entry if key not in _MODEL_KEYS]
    if unknown:
        raise RepositoryConfigError(
            file, f"{where}.{unknown[0]}", 'only the keys "versions" and "labels"', "an unknown key"
        )
    policy = _policy(file, f"{where}.versions", entry.get("versions", "latest"))
    labels = _labels(file, f"{where}.labels", entry.get("labels", {}))
    if policy.kind is PolicyKind.SPECIFIC:
        for label, version in labels.items():
            if version not in policy.versions:
                raise RepositoryConfigError(
                    file,
                    f"{where}.labels.{label}",
                    f"one of the versions the policy serves ({policy.describe()})",
                    str(version),
                )
    return ModelConfig(policy, labels)


def _policy(file: str, where: str, value: Any) -> VersionPolicy:
    expected = '"latest", "all" or a list of distinct version numbers'
    if isinstance(value, str):
        if value in (PolicyKind.LATEST.value, PolicyKind.ALL.value):
            return VersionPolicy(PolicyKind(value))
        raise RepositoryConfigError(file, where, expected, _shown(value))
    if not isinstance(value, list) or not value:
        raise RepositoryConfigError(file, where, expected, _shown(value))
    versions = [_version(file, where, item, expected) for item in value]
    if len(set(versions)) != len(versions):
        raise RepositoryConfigError(file, where, expected, _shown(value))
    return VersionPolicy(PolicyKind.SPECIFIC, tuple(sorted(versions)))


def _labels(file: str, where: str, value: Any) -> Mapping[str, int]:
    if not isinstance(value, dict):
        raise RepositoryConfigError(file, where, "an object of label: version", _shown(value))
    labels: dict[str, int] = {}
    for label, version in value.items():
        _segment(file, f"{where}.{label}", Segment.LABEL, label)
        labels[label] = _version(file, f"{where}.{label}", version, "a version number")
    return MappingProxyType(labels)


def _segment(file: str, where: str, kind: Segment, value: str) -> None:
    try:
        check(kind, value)
    except InvalidSegment as e:
        raise RepositoryConfigError(file, where, f"a {kind.value}", str(e)) from e


def _version(file: str, where: str, value: Any, expected: str) -> int:
    # JSON numbers only: "2" and true are not versions here, though folder names are text.
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return version_number(value)
        except InvalidSegment:
            pass
    raise RepositoryConfigError(file, where, expected, _shown(value))


def _shown(value: Any) -> str:
    """A JSON value as the message shows it (shortened)."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
