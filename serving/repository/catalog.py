"""A listing with ``models.json`` applied: the models, the versions each serves, its labels.

Everything a request needs to find its version is decided here, before anything loads;
:meth:`Catalog.resolve` is the one place a (name, version, label) becomes a version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from serving.errors import BadRequest
from serving.repository import config
from serving.repository.config import ModelConfig, RepositoryConfig, VersionPolicy
from serving.repository.errors import ModelNotFound, RepositoryConfigError
from serving.repository.listing import Listing, VersionSource
from serving.repository.names import Segment, check, version_number


@dataclass(frozen=True)
class ModelEntry:
    """One model: the versions present, those its policy serves (ascending), its labels.

    ``error`` is set when its ``models.json`` entry cannot be used: every request for the
    model answers it, and the other models are unaffected.
    """

    name: str
    policy: VersionPolicy
    present: tuple[int, ...]
    served: tuple[int, ...]
    labels: Mapping[str, int]
    sources: Mapping[int, VersionSource]
    error: RepositoryConfigError | None = None


@dataclass(frozen=True)
class Catalog:
    """The models of one listing. ``error``: ``models.json`` as a whole is unusable, and
    every model answers it until the file is fixed."""

    location: str
    models: Mapping[str, ModelEntry] = field(default_factory=lambda: MappingProxyType({}))
    error: RepositoryConfigError | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def entry(self, name: str) -> ModelEntry:
        """The model called ``name`` (400 if it breaks the name rule, 404 if absent)."""
        check(Segment.MODEL, name)
        found = self.models.get(name)
        if found is None:
            served = ", ".join(repr(n) for n in self.models) or "none"
            raise ModelNotFound(f"model {name!r} not found; the repository's models: {served}")
        return found

    def resolve(
        self, name: str, version: int | str | None = None, label: str | None = None
    ) -> tuple[ModelEntry, int]:
        """The model and the version a request names (default: the highest served).

        Raises:
            InvalidSegment: a name, version or label breaks the name rule (400).
            BadRequest: both a version and a label (400).
            ModelNotFound: no such model, version or label (404, naming what exists).
            RepositoryConfigError: ``models.json`` is unusable for this model (503).
        """
        found = self.entry(name)
        if self.error is not None:
            raise self.error
        if found.error is not None:
            raise found.error
        if version is not None and label is not None:
            raise BadRequest(f"model {name!r}: give a version or a label, not both")
        if label is not None:
            check(Segment.LABEL, label)
            if label not in found.labels:
                known = ", ".join(repr(k) for k in found.labels) or "none"
                raise ModelNotFound(f"model {name!r} has no label {label!r}; its labels: {known}")
            return found, found.labels[label]
        if version is None:
            return found, found.served[-1]
        number = version_number(version)
        if number not in found.served:
            served = ", ".join(map(str, found.served))
            if number in found.present:
                raise ModelNotFound(
                    f"version {number} of model {name!r} is not served (its version "
                    f"policy {found.policy.describe()} serves: {served})"
                )
            raise ModelNotFound(f"model {name!r} has no version {number}; it serves: {served}")
        return found, number


def build(listing: Listing) -> Catalog:
    """Apply the listing's ``models.json`` (if any) to its versions."""
    parsed = RepositoryConfig()
    error = None
    if listing.config_text is not None:
        try:
            parsed = config.parse(listing.config_text, listing.config_file)
        except RepositoryConfigError as e:
            error = e
    models: dict[str, ModelEntry] = {}
    for name, sources in listing.versions.items():
        if sources:  # a folder without a single version folder is not a model (logged)
            models[name] = _entry(listing, parsed, name, sources)
    for name in parsed.models.keys() | parsed.errors.keys():
        if name not in models:
            missing = RepositoryConfigError(
                listing.config_file,
                f"models.{name}",
                f"a model folder {name}/<version>/model.tflite in {listing.location}",
                "no such folder",
            )
            models[name] = ModelEntry(
                name, config.LATEST, (), (), MappingProxyType({}), MappingProxyType({}), missing
            )
    return Catalog(listing.location, MappingProxyType(dict(sorted(models.items()))), error)


def _entry(
    listing: Listing, parsed: RepositoryConfig, name: str, sources: Mapping[int, VersionSource]
) -> ModelEntry:
    present = tuple(sorted(sources))
    wanted: ModelConfig = parsed.models.get(name, config.DEFAULT)
    served = wanted.policy.select(present)
    error = parsed.errors.get(name)
    where = f"models.{name}"
    if error is None and len(served) != len(wanted.policy.versions) and wanted.policy.versions:
        error = RepositoryConfigError(
            listing.config_file,
            f"{where}.versions",
            f"versions {name} has in {listing.location} ({', '.join(map(str, present))})",
            wanted.policy.describe(),
        )
    for label, version in wanted.labels.items():
        if error is None and version not in served:
            error = RepositoryConfigError(
                listing.config_file,
                f"{where}.labels.{label}",
                f"one of the versions its policy serves ({', '.join(map(str, served))})",
                str(version),
            )
    return ModelEntry(name, wanted.policy, present, served, wanted.labels, sources, error)
