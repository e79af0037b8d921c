"""The process-wide model: loaded lazily on first use, exactly once, retried after a failure.

Warm requests reuse the loaded :class:`Model`. Concurrent first requests wait for the
single load in progress. When a load fails, the requests that waited for it get its
error, and the next request to arrive tries again: a failure never sticks.

With ``MODEL_REPOSITORY`` set, the process serves a :class:`serving.repository.Repository`
instead (:attr:`Runtime.repository`), whose versions follow the same rules each.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from serving import logs, overrides
from serving.admission import MemoryBudget
from serving.errors import ModelLoadError, ServingError
from serving.memory import ModelFootprint
from serving.model import Model
from serving.model.weight_cache import CacheState
from serving.once import Once
from serving.settings import Settings
from serving.storage import source

if TYPE_CHECKING:
    from serving.repository import Repository


class ModelState(enum.Enum):
    """Where the process-wide model is; the values are TF Serving's state names."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Loaded:
    """The model, and the load time if this very call paid for loading it (cold start)."""

    model: Model
    load_ms: float | None


class Runtime:
    """Holds the settings and the lazily loaded model of one server process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._once: Once[Loaded] = Once()
        self._budget: MemoryBudget | None = None
        self._repository: Repository | None = None
        self._repository_lock = threading.Lock()

    @property
    def budget(self) -> MemoryBudget:
        """The memory budget requests of this process are admitted against."""
        if self._budget is None:
            settings = self.settings
            self._budget = MemoryBudget(settings.request_budget(), settings.admission_timeout)
        return self._budget

    @property
    def repository(self) -> Repository | None:
        """The model repository (``MODEL_REPOSITORY``), made on first use but not listed;
        None in single-model mode."""
        if self._repository is not None:  # every request of a repository: no lock
            return self._repository
        settings = self.settings
        if not settings.model_repository:
            return None
        with self._repository_lock:
            if self._repository is None:
                from serving.repository import Repository  # not on single-model mode's path

                self._repository = Repository(settings)
            return self._repository

    @property
    def settings(self) -> Settings:
        """The settings, read from the environment on first use."""
        if self._settings is None:
            self._settings = Settings.from_env()
            logs.configure(self._settings.log_level)
        return self._settings

    def state(self) -> tuple[ModelState, ServingError | None]:
        """Where the model is, and the last load error."""
        if self._once.peek() is not None:
            return ModelState.AVAILABLE, None
        if self._once.loading:
            return ModelState.LOADING, None
        if self._once.error is not None:
            return ModelState.FAILED, self._once.error
        return ModelState.START, None

    def load(self) -> Loaded:
        """The model, loading it now if no load has succeeded yet (single-model mode)."""
        if self.settings.model_repository:  # a bug, never the bundled model in its place
            raise RuntimeError("Runtime.load() with MODEL_REPOSITORY set: use .repository")
        loaded, made = self._once.get(self._load_now)
        return loaded if made else Loaded(loaded.model, None)

    def _load_now(self) -> Loaded:
        started = time.perf_counter()
        try:
            settings = self.settings
            fetched = source.fetch(
                settings.model_path, cache_dir=settings.cache_dir, timeout=settings.gcs_timeout
            )
            model = Model.load(fetched.path, **settings.load_options())
            overrides.apply(model, settings)
        except ServingError as e:
            self._fail(e, started)
            raise
        except Exception as e:  # an unforeseen loader failure is still a 503, retried next time
            error = ModelLoadError(f"model could not be loaded: {type(e).__name__}: {e}", "invalid")
            self._fail(error, started, exc_info=True)
            raise error from e
        load_ms = (time.perf_counter() - started) * 1000
        footprint = _instance_footprint(model, fetched)
        self.budget.resize(settings.request_budget(footprint))
        cache = model.weight_cache
        if cache is not None and cache.state is CacheState.PRIVATE:
            logs.log(
                logging.WARNING,
                f"weight cache not used, weights packed in process memory: {cache.reason}",
                weight_cache_dir=str(settings.weight_cache_dir),
            )
        logs.log(
            logging.INFO,
            "model loaded",
            cold_start=True,
            load_ms=round(load_ms, 2),
            model_path=settings.model_path,
            downloaded=fetched.downloaded,
            fetch_ms=round(fetched.ms, 2),
            model_bytes=fetched.size_bytes,
            backend=model.backend.name,
            backend_version=model.backend.version,
            engine=model.engine.kind.value,
            engine_reason=model.choice.reason,
            engine_build_ms=round(model.engine.first_build_ms, 2),
            pool_size=model.engine.size,
            threads=settings.num_threads,
            footprint=footprint.as_log(settings.workers),
            request_budget_bytes=self.budget.capacity,
            **_cache_fields(model),
            **_metadata_fields(model),
        )
        return Loaded(model, load_ms)

    def _fail(self, error: ServingError, started: float, exc_info: bool = False) -> None:
        logs.log(
            logging.ERROR,
            f"model load failed: {error}",
            exc_info=exc_info,
            load_ms=round((time.perf_counter() - started) * 1000, 2),
            reason=error.reason.value if isinstance(error, ModelLoadError) else None,
        )


def _instance_footprint(model: Model, fetched: source.FetchedModel) -> ModelFootprint:
    """The model's footprint, plus its file when the function wrote it (a download)."""
    footprint = model.footprint
    if fetched.generation is not None:  # a gs:// model sits in the cache dir: memory
        footprint = replace(footprint, shared_bytes=footprint.shared_bytes + fetched.size_bytes)
    return footprint


def _cache_fields(model: Model) -> dict[str, object]:
    """What the load log says about the packed-weights file (nothing for interpreters)."""
    cache = model.weight_cache
    if cache is None:
        return {}
    fields: dict[str, object] = {"state": cache.state.value, "bytes": cache.bytes}
    if cache.path is not None:
        fields["path"] = str(cache.path)
    if cache.reason is not None:
        fields["reason"] = cache.reason
    return {"weight_cache": fields}


def _metadata_fields(model: Model) -> dict[str, object]:
    """What the load log says about the model's metadata (nothing for a model without)."""
    if model.metadata_error is not None:
        return {"metadata_error": f"metadata ignored: {model.metadata_error}"}
    if model.metadata is None:
        return {}
    labelled = sum(1 for info in model.metadata.outputs.values() if info.labels)
    normalised = sum(1 for info in model.metadata.inputs.values() if info.normalization)
    return {"metadata": {"labelled_outputs": labelled, "normalised_inputs": normalised}}
