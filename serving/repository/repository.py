"""Several models and versions, listed at start, each loaded on first use, held in memory.

- **Lazy.** Listing reads names only; :meth:`Repository.get` loads the version it names,
  once (:class:`serving.once.Once`: concurrent first requests share one load, a failed
  load is retried by a later request). Each version has its own load lock, so loads of
  different models never wait for each other.
- **Held within memory.** Each loaded version's measured footprint (its engines, its
  packed weights, its download) counts against this worker's share of the instance's
  memory (:func:`serving.memory.repository_shares`). A load that does not fit first unloads
  the least recently used idle versions; a version in use (leased: :class:`Lease`) is never
  unloaded. A version that cannot fit even alone is refused (503) before it is loaded when
  its estimate says so, after it is measured otherwise.
- **Cheap to reload.** Unloading closes the engines and deletes the packed-weights file
  (on Cloud Run the temp dir is memory, so keeping it would keep about 1x the weights);
  a ``gs://`` version's verified download stays cached, and counted, until room is needed
  for another load.
- **Polling.** With ``MODEL_REPOSITORY_POLL_SECONDS`` a daemon thread re-lists the
  repository; a version that disappeared or changed is unloaded once idle.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from serving import logs, memory
from serving.errors import ModelLoadError, ServiceUnavailable, ServingError
from serving.memory import ModelFootprint, mib
from serving.once import Once
from serving.repository import catalog as catalogs
from serving.repository.catalog import Catalog
from serving.repository.errors import InsufficientMemory
from serving.repository.listing import Ignored, VersionSource, list_repository
from serving.repository.states import VersionState
from serving.settings import SINGLE_MODEL_ONLY, Settings
from serving.storage import source

if TYPE_CHECKING:
    from serving.model import Model


@dataclass(frozen=True)
class VersionStatus:
    """One served version and where it is (for status answers and the repository index).

    ``error`` is the last load error (``FAILED``) or the ``models.json`` problem that
    keeps the model from being served.
    """

    name: str
    version: int | None
    state: VersionState
    error: ServingError | None = None


class _Slot:
    """One version's place in this process: its lazily loaded model and what it holds."""

    def __init__(self, name: str, version: int, source_: VersionSource) -> None:
        self.name = name
        self.version = version
        self.source = source_
        self.once: Once[Model] = Once()
        self.state = VersionState.START
        self.leases = 0
        self.used = 0  # LRU tick of the last lease or release
        self.held = 0  # bytes counted against the capacity now
        self.footprint: ModelFootprint | None = None
        self.measured = 0  # what it held when last loaded: the next load's estimate
        self.download: Path | None = None  # a gs:// version's cached file
        self.download_bytes = 0
        self.load_ms: float | None = None
        self.retired = False
        self.closing: Model | None = None  # detached, being unloaded

    @property
    def key(self) -> tuple[str, int, VersionSource]:
        return self.name, self.version, self.source

    def fields(self) -> dict[str, object]:
        return {"model_name": self.name, "model_version": self.version, "uri": self.source.uri}


class Lease:
    """A loaded version borrowed for one use; it cannot be unloaded until released.

    Use it as a context manager (``with repository.get("digits") as lease:``), or call
    :meth:`release` exactly once.
    """

    def __init__(self, repository: Repository, slot: _Slot, model: Model, load_ms: float | None):
        self.model = model
        self.name = slot.name
        self.version = slot.version
        self.load_ms = load_ms  # the load time if this very call paid for the load
        self._repository = repository
        self._slot: _Slot | None = slot

    def release(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            self._repository._release(slot)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Repository:
    """A model repository (``MODEL_REPOSITORY``) for one process (thread-safe)."""

    def __init__(self, settings: Settings, *, poll: bool = True) -> None:
        if not settings.model_repository:
            raise ValueError("settings.model_repository is not set")
        self.settings = settings
        self.location = settings.model_repository
        self.capacity = settings.repository_shares().models
        self._cond = threading.Condition()
        self._builds = threading.Lock()
        self._slots: dict[tuple[str, int, VersionSource], _Slot] = {}
        self._catalog: Catalog | None = None
        self._first_listing: Once[Catalog] = Once()
        self._ticks = itertools.count(1)
        self._held = 0
        self._reserved = 0
        self._logged: set[str] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        if poll and settings.repository_poll > 0:
            self._poller = threading.Thread(
                target=self._poll, name="model-repository-poll", daemon=True
            )
            self._poller.start()

    @classmethod
    def open(cls, location: str | Path, settings: Settings | None = None) -> Repository:
        """The repository at ``location`` (a directory or ``gs://bucket/prefix``), listed now.

        ``settings`` default to the environment's (memory limit, engine, cache folders...)
        with ``MODEL_PATH`` and the other single-model settings left out.

        Raises:
            ModelLoadError: the repository cannot be listed (missing, unreachable).
        """
        if settings is None:
            env = {k: v for k, v in os.environ.items() if k not in SINGLE_MODEL_ONLY}
            settings = Settings.from_env({**env, "MODEL_REPOSITORY": str(location)})
        repository = cls(replace(settings, model_repository=str(location)))
        repository.catalog()
        return repository

    # --- listing ---------------------------------------------------------------------

    def catalog(self) -> Catalog:
        """The models as last listed (listing now if no listing has succeeded yet)."""
        found = self._catalog
        if found is not None:
            return found
        return self._first_listing.get(self.refresh)[0]

    def refresh(self) -> Catalog:
        """List the repository again and serve what it holds now.

        Versions that left the repository (or whose file changed) are unloaded once idle.

        Raises:
            ModelLoadError: the repository cannot be listed; the last listing stays.
        """
        listing = list_repository(
            self.location, cache_dir=self.settings.cache_dir, timeout=self.settings.gcs_timeout
        )
        for ignored in listing.ignored:
            self._log_ignored(ignored)
        found = catalogs.build(listing)
        current = {
            (entry.name, version, entry.sources[version])
            for entry in found.models.values()
            if entry.error is None and found.error is None
            for version in entry.served
        }
        with self._cond:
            changed = self._catalog is None or self._catalog != found
            self._catalog = found
            gone = [slot for key, slot in self._slots.items() if key not in current]
            for key, slot in self._slots.items():
                slot.retired = key not in current  # back again: no longer retired
        for slot in gone:
            self._retire(slot)
        if changed:
            logs.log(
                logging.INFO if found.error is None else logging.ERROR,
                "model repository listed",
                repository=self.location,
                list_ms=listing.ms,
                models={e.name: list(e.served) for e in found.models.values()},
                errors={e.name: str(e.error) for e in found.models.values() if e.error},
                config_error=str(found.error) if found.error else None,
            )
        return found

    def _log_ignored(self, ignored: Ignored) -> None:
        if ignored.entry in self._logged:
            return
        self._logged.add(ignored.entry)
        logs.log(
            logging.WARNING,
            f"model repository entry ignored: {ignored.entry}: {ignored.why}",
            repository=self.location,
            entry=ignored.entry,
        )

    def _poll(self) -> None:
        """Re-list every ``repository_poll`` seconds until :meth:`close` (daemon thread)."""
        while not self._stop.wait(self.settings.repository_poll):
            try:
                self.refresh()
            except ServingError as e:
                logs.log(
                    logging.WARNING,
                    f"model repository re-listing failed, serving the last listing: {e}",
                    repository=self.location,
                )
            except Exception as e:  # the poller must outlive any one bad listing
                logs.log(
                    logging.ERROR,
                    f"model repository re-listing failed: {type(e).__name__}: {e}",
                    exc_info=True,
                    repository=self.location,
                )

    # --- loading ---------------------------------------------------------------------

    def get(self, name: str, version: int | str | None = None, label: str | None = None) -> Lease:
        """Lease the version a request names, loading it first if it is not in memory.

        ``version`` (a number) or ``label`` (``models.json``), or neither: the highest
        version served. Release the lease when done (``with``).

        Raises:
            InvalidSegment: a name, version or label breaks the name rule (400).
            ModelNotFound: no such model, version or label (404).
            RepositoryConfigError: ``models.json`` is unusable for this model (503).
            ModelLoadError: the version cannot be loaded (503, retried by later requests).
            InsufficientMemory: it does not fit in the instance's memory (503).
        """
        entry, number = self.catalog().resolve(name, version, label)
        slot = self._slot(entry.name, number, entry.sources[number])
        while True:
            with self._cond:
                model = slot.once.peek()
                if model is not None:
                    return self._lease(slot, model, None)
            model, made = slot.once.get(lambda: self._load(slot))
            if made:  # _load leased it before anyone could unload it
                return Lease(self, slot, model, slot.load_ms)
            with self._cond:
                if slot.once.peek() is model:
                    return self._lease(slot, model, None)
            # unloaded between the load we waited for and now: load again

    @contextlib.contextmanager
    def model(
        self, name: str, version: int | str | None = None, label: str | None = None
    ) -> Iterator[Model]:
        """``with repository.model("digits", version=2) as model: model.predict(...)``."""
        with self.get(name, version, label) as lease:
            yield lease.model

    def _slot(self, name: str, version: int, source_: VersionSource) -> _Slot:
        with self._cond:
            key = (name, version, source_)
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(name, version, source_)
            return slot

    def _lease(self, slot: _Slot, model: Model, load_ms: float | None) -> Lease:
        """(Lock held.)"""
        slot.leases += 1
        slot.used = next(self._ticks)
        return Lease(self, slot, model, load_ms)

    def _release(self, slot: _Slot) -> None:
        with self._cond:
            slot.leases -= 1
            slot.used = next(self._ticks)
            retire = slot.retired and slot.leases == 0
            # Over the share (a first load measured above its estimate while every other
            # version was in use): idle versions go now, this one included if it is idle.
            self._make_room(0, wait=False, what=None)
            self._cond.notify_all()
        if retire:
            self._retire(slot)

    def _load(self, slot: _Slot) -> Model:
        """Load ``slot``'s version (its Once lock held), leased once to the caller."""
        started = time.perf_counter()
        need = self._estimate(slot)
        with self._cond:
            slot.state = VersionState.LOADING
            try:
                self._make_room(need, wait=True, what=slot)
            except ServingError as e:
                slot.state = VersionState.FAILED
                self._log_failure(slot, e, started)
                raise
            self._reserved += need
        try:
            model = self._load_model(slot)
        except ServingError as e:
            with self._cond:
                self._reserved -= need
                slot.state = VersionState.FAILED
                self._cond.notify_all()
            self._log_failure(slot, e, started)
            raise
        footprint = model.footprint
        engines = footprint.shared_bytes + footprint.per_process_bytes
        measured = max(engines, self._weights(slot)) + slot.download_bytes
        with self._cond:
            self._reserved -= need
            if self.capacity is not None and measured > self.capacity:
                slot.state = VersionState.FAILED
                self._cond.notify_all()
                too_big = True
            else:
                too_big = False
                self._held += measured - slot.held
                slot.held, slot.footprint, slot.measured = measured, footprint, measured
                slot.state = VersionState.AVAILABLE
                slot.leases += 1  # the caller's lease, before anyone could unload it
                slot.used = next(self._ticks)
        if too_big:
            _close_model(model)
            error = InsufficientMemory(
                f"model {slot.name!r} version {slot.version} ({slot.source.uri}) holds "
                f"{mib(measured)} once loaded; {self._limit_text()}"
            )
            self._log_failure(slot, error, started)
            raise error
        with self._cond:
            self._make_room(0, wait=False, what=slot)  # measured above the estimate
        slot.load_ms = round((time.perf_counter() - started) * 1000, 2)
        logs.log(
            logging.INFO,
            "model version loaded",
            **slot.fields(),
            load_ms=slot.load_ms,
            engine=model.engine.kind.value,
            footprint=footprint.as_log(1),
            held_bytes=measured,
            repository_held_bytes=self._held,
            capacity_bytes=self.capacity,
        )
        return model

    def _load_model(self, slot: _Slot) -> Model:
        """Fetch (gs:// downloads stay cached) and load; every failure is a ServingError."""
        from serving.model import Model  # numpy and the runtime: only once a model loads

        settings = self.settings
        try:
            fetched = source.fetch(
                slot.source.uri, cache_dir=settings.cache_dir, timeout=settings.gcs_timeout
            )
            if fetched.generation is not None and slot.download is None:
                with self._cond:  # the download is memory (temp dir) while it is cached
                    slot.download, slot.download_bytes = fetched.path, fetched.size_bytes
                    slot.held += fetched.size_bytes
                    self._held += fetched.size_bytes
            # One build at a time per process: a footprint is the process's memory growth
            # during the build, and two builds at once would count each other's memory
            # (seen: one measured 0 bytes, the other double). Builds are CPU-bound on
            # Cloud Run's 1-2 vCPUs anyway; downloads and waits for memory still overlap.
            with self._builds:
                return Model.load(fetched.path, **settings.load_options())
        except ServingError:
            raise
        except Exception as e:  # an unforeseen loader failure is still a 503, retried
            raise ModelLoadError(
                f"{slot.source.uri} could not be loaded: {type(e).__name__}: {e}", "invalid"
            ) from e

    def _estimate(self, slot: _Slot) -> int:
        """What loading the version will add: its last measured footprint (less what it
        still holds: a kept download), else ``deploy.sh``'s estimate for the file, which
        leaves out the engine's working memory until it is measured."""
        if slot.measured:
            return max(0, slot.measured - slot.held)
        downloading = slot.source.generation is not None and slot.download is None
        return self._weights(slot) + (slot.source.size_bytes if downloading else 0)

    def _weights(self, slot: _Slot) -> int:
        """``deploy.sh``'s estimate of the version's weights in memory: also the least a
        loaded version is counted for, since a build's measured growth can read 0 when
        the allocator reuses freed heap (small models)."""
        return memory.estimate(
            slot.source.size_bytes,
            workers=1,
            pool_per_worker=self.settings.pool_size,
            max_request_bytes=0,
            downloaded=False,
        ).weights_bytes

    def _limit_text(self) -> str:
        return (
            f"this worker has {mib(self.capacity or 0)} for models (MEMORY_LIMIT_BYTES="
            f"{self.settings.memory_limit} less the runtime and one request, "
            f"WORKERS={self.settings.workers})"
        )

    def _log_failure(self, slot: _Slot, error: ServingError, started: float) -> None:
        logs.log(
            logging.ERROR,
            f"model version load failed: {error}",
            **slot.fields(),
            load_ms=round((time.perf_counter() - started) * 1000, 2),
            reason=error.reason.value if isinstance(error, ModelLoadError) else None,
        )

    # --- memory ----------------------------------------------------------------------

    @property
    def held_bytes(self) -> int:
        """Bytes the loaded versions (and cached downloads) of this process hold."""
        return self._held

    def _make_room(self, need: int, *, wait: bool, what: _Slot | None) -> None:
        """Unload idle versions, least recently used first, until ``need`` more fits.

        (Lock held; released while a version closes.) With ``wait``, versions in use are
        waited for up to ``ADMISSION_TIMEOUT_SECONDS``; without, the room made is what
        idle versions give.
        """
        if self.capacity is None:
            return
        if need > self.capacity and what is not None:
            raise InsufficientMemory(
                f"model {what.name!r} version {what.version} ({what.source.uri}, "
                f"{mib(what.source.size_bytes)}) needs about {mib(need)} loaded; "
                f"{self._limit_text()}"
            )
        deadline = time.monotonic() + self.settings.admission_timeout
        while self._held + self._reserved + need > self.capacity:
            victim = self._victim(exclude=what)
            if victim is not None:
                self._cond.release()
                try:
                    reason = f"room for {what.name}/{what.version}" if what else "over the limit"
                    self._unload(victim, reason=reason)
                finally:
                    self._cond.acquire()
                continue
            if not wait:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceUnavailable(
                    f"no room to load model {what.name!r} version {what.version} "
                    f"(about {mib(need)}): the versions in use hold {mib(self._held)} of "
                    f"{mib(self.capacity)}; try again",
                    retry_after=max(1, round(self.settings.admission_timeout)),
                )
            self._cond.wait(remaining)

    def _victim(self, exclude: _Slot | None) -> _Slot | None:
        """(Lock held.) The least recently used idle loaded version, detached for
        :meth:`_unload`; else the least recently used cached download of an unloaded one."""
        idle = [s for s in self._slots.values() if s is not exclude and s.leases == 0]
        loaded = [s for s in idle if s.state is VersionState.AVAILABLE]
        if loaded:
            victim = min(loaded, key=lambda s: s.used)
            self._detach(victim)
            return victim
        cached = [s for s in idle if s.closing is None and s.download is not None]
        cached = [s for s in cached if s.once.peek() is None and not s.once.loading]
        return min(cached, key=lambda s: s.used) if cached else None

    def _detach(self, slot: _Slot) -> None:
        """(Lock held.) Take an idle loaded version out of service: new requests load it
        again; its bytes count until :meth:`_unload` has closed it."""
        slot.state = VersionState.UNLOADING
        slot.closing = slot.once.reset()

    def _unload(self, slot: _Slot, reason: str) -> None:
        """(Lock not held.) Close a detached version; a version with nothing to close (or
        that left the repository) also loses its cached download."""
        with self._cond:
            model, slot.closing = slot.closing, None
        if model is not None:
            _close_model(model)
            with self._cond:
                freed = slot.held - slot.download_bytes
                self._held -= freed
                slot.held = slot.download_bytes
                slot.state = VersionState.UNLOADED
                self._cond.notify_all()
            logs.log(
                logging.INFO,
                "model version unloaded",
                **slot.fields(),
                reason=reason,
                freed_bytes=freed,
                repository_held_bytes=self._held,
                capacity_bytes=self.capacity,
            )
            if not slot.retired:
                return
        with self._cond:
            download, freed = slot.download, slot.held
            if download is None or slot.once.peek() is not None or slot.once.loading:
                return
            slot.download, slot.held, slot.download_bytes = None, 0, 0
            self._held -= freed
            self._cond.notify_all()
        download.unlink(missing_ok=True)  # other workers that opened it keep their copy
        logs.log(
            logging.INFO,
            "cached model download removed",
            **slot.fields(),
            reason=reason,
            path=str(download),
            freed_bytes=freed,
            repository_held_bytes=self._held,
        )

    def unload(self, name: str, version: int | str | None = None) -> bool:
        """Unload a version now if it is loaded and idle (default: the highest served).

        Its cached download stays. False when it was not loaded or is in use.
        """
        entry, number = self.catalog().resolve(name, version)
        with self._cond:
            slot = self._slots.get((entry.name, number, entry.sources[number]))
            if slot is None or slot.state is not VersionState.AVAILABLE or slot.leases:
                return False
            self._detach(slot)
        self._unload(slot, reason="asked")
        return True

    def _retire(self, slot: _Slot) -> None:
        """A version that left the repository: unloaded (and forgotten) once idle."""
        with self._cond:
            if slot.leases > 0:
                return  # the last release retires it
            if slot.state is VersionState.AVAILABLE:
                self._detach(slot)
        self._unload(slot, reason="left the repository or changed")
        with self._cond:
            if slot.leases == 0 and slot.held == 0:
                self._slots.pop(slot.key, None)

    # --- status ----------------------------------------------------------------------

    def status(self, name: str | None = None) -> tuple[VersionStatus, ...]:
        """Every served version of ``name`` (default: of every model) and its state.

        A model ``models.json`` keeps from being served has one status, version None,
        ``FAILED`` with the problem.
        """
        found = self.catalog()
        entries = [found.entry(name)] if name is not None else list(found.models.values())
        statuses: list[VersionStatus] = []
        with self._cond:
            for entry in entries:
                problem = found.error or entry.error
                if problem is not None:
                    statuses.append(VersionStatus(entry.name, None, VersionState.FAILED, problem))
                    continue
                for version in entry.served:
                    slot = self._slots.get((entry.name, version, entry.sources[version]))
                    if slot is None:
                        statuses.append(VersionStatus(entry.name, version, VersionState.START))
                    else:
                        error = slot.once.error if slot.state is VersionState.FAILED else None
                        statuses.append(VersionStatus(entry.name, version, slot.state, error))
        return tuple(statuses)

    def close(self) -> None:
        """Stop polling and unload every version (idle or not: call when serving is over)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=self.settings.gcs_timeout + 1)
        with self._cond:
            slots = list(self._slots.values())
        for slot in slots:
            model = slot.once.reset()
            if model is not None:
                _close_model(model)
            with self._cond:
                self._held -= slot.held - slot.download_bytes
                slot.held = slot.download_bytes
                slot.state = VersionState.UNLOADED

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_model(model: Model) -> None:
    """Close the engines and delete the packed-weights file (memory on Cloud Run).

    Reloading packs it again (measured in docs/repository.md); the model file itself,
    local or a cached download, stays.
    """
    use = model.weight_cache
    model.close()
    # Give the freed heap back, or the next load reuses it and measures its engine as ~0.
    memory.release_free_heap()
    if use is not None and use.path is not None:
        from serving.model.weight_cache import discard

        discard(use.path)
