"""A model repository: several models and versions served by one function.

>>> from serving.repository import Repository
>>> repository = Repository.open("models/")  # or "gs://bucket/prefix"
>>> with repository.model("digits", version=2) as model:
...     probabilities = model.predict({"pixels": images})["probabilities"]

Layout: ``<repository>/<name>/<version>/model.tflite`` plus an optional ``models.json``
(version policies and labels); see docs/repository.md. Listing loads nothing; a version
loads on first use and is unloaded when another needs its memory and it is idle.

Modules, imports flowing down only (none of them imports numpy; a version's load does)::

    repository  Repository, Lease: lazy loads, leases, memory, polling
    catalog     a listing with models.json applied; (name, version, label) -> version
    listing     the layout, local or gs://
    config      models.json: version policies, labels
    names       the one name rule for models, versions and labels
    states      version states, as TF Serving and Triton name them
    errors      the typed errors (each with its HTTP status)
"""

from __future__ import annotations

from serving.repository.catalog import Catalog, ModelEntry
from serving.repository.config import ModelConfig, PolicyKind, RepositoryConfig, VersionPolicy
from serving.repository.errors import InsufficientMemory, ModelNotFound, RepositoryConfigError
from serving.repository.names import InvalidSegment, Segment
from serving.repository.repository import Lease, Repository, VersionStatus
from serving.repository.states import VersionState

__all__ = [
    "Catalog",
    "InsufficientMemory",
    "InvalidSegment",
    "Lease",
    "ModelConfig",
    "ModelEntry",
    "ModelNotFound",
    "PolicyKind",
    "Repository",
    "RepositoryConfig",
    "RepositoryConfigError",
    "Segment",
    "VersionPolicy",
    "VersionState",
    "VersionStatus",
]
