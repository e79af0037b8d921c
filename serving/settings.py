"""Runtime settings, read once from the environment into one frozen, typed object."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from serving import memory
from serving.errors import ServingError
from serving.memory import ModelFootprint

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "model" / "quantized_model.tflite"
# The interpreter backends in order of preference (serving.model.backend imports them) and
# the engines: names SERVING_BACKEND and SERVING_ENGINE take.
BACKENDS = ("litert", "tflite_runtime", "tensorflow")
ENGINES = ("compiled", "interpreter")
# Where packed weights go by default: the temp dir, which Cloud Run keeps in memory (counted
# once per instance in the model's footprint); WEIGHT_CACHE_DIR moves it.
DEFAULT_WEIGHT_CACHE_DIR = Path(tempfile.gettempdir()) / "tflite-weight-cache"
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096  # MAX_IMAGE_PIXELS, and the decoders' default
# The one rule for model names and versions: they are URL path segments of every route
# (serving/http/routes.py), and deploy.sh checks the same rule (tests/deploy).
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
NAME = re.compile(NAME_PATTERN)
NAME_RULE = "must be letters, digits, '.', '_' or '-', starting with a letter or digit"
N = TypeVar("N", int, float)


class ConfigError(ServingError):
    """An environment variable has a value the server cannot use (500: operator's mistake)."""

    status_code = 500


def _usable_cpus() -> int:
    # sched_getaffinity honours CPU limits set on the container; cpu_count does not.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _instance_memory() -> int:
    """The container's memory limit (cgroup v2, then v1), else the machine's RAM; 0 if unknown."""
    for path, scale in (
        ("/sys/fs/cgroup/memory.max", 1),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", 1),
        ("/proc/meminfo", 1024),
    ):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("meminfo"):
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            text = fields.get("MemTotal", "0").split()[0]
        text = text.strip()
        if text.isdigit() and 0 < int(text) < 1 << 60:  # cgroup v1 says "no limit" with ~2^63
            return int(text) * scale
    return 0


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment.

    ==========================  ==========================================  ==================
    variable                    meaning                                     default
    ==========================  ==========================================  ==================
    MODEL_PATH                  local path or ``gs://bucket/object``        bundled model
    MODEL_REPOSITORY            several models: a directory or              unset (MODEL_PATH)
                                ``gs://bucket/prefix`` (docs/repository.md)
    MODEL_REPOSITORY_POLL_SECONDS
                                re-list the repository every N seconds      ``0`` (list once)
    MODEL_NAME                  name in the REST routes                     ``model``
    MODEL_VERSION               version reported and accepted in routes     ``1``
    INTERPRETER_POOL_SIZE       interpreters serving requests in parallel   usable CPUs
                                (interpreter engine; compiled: 1/process)
    INTERPRETER_THREADS         threads per interpreter or compiled model   ``1``
    SERVING_BACKEND             force litert / tflite_runtime / tensorflow  first importable
    SERVING_ENGINE              force compiled / interpreter                by model size
    WEIGHT_CACHE_DIR            where packed weights are shared             temp dir
    MAX_REQUEST_BYTES           request body limit (413 above it)           10 MiB
    MAX_BATCH_SIZE              instances per invoke (larger are chunked)   ``64``
    BODY_TIMEOUT_SECONDS        time a request body may take to arrive      ``20``
    MEMORY_LIMIT_BYTES          the instance's memory (deploy.sh: --memory) cgroup limit, or RAM
    WORKERS                     gunicorn worker processes sharing it        ``1``
    REQUEST_MEMORY_BUDGET_BYTES request memory one process admits at once   45% of its share
                                                                            after the model
    ADMISSION_TIMEOUT_SECONDS   wait for budget before a 503 + Retry-After  ``5``
    GCS_TIMEOUT_SECONDS         bound on a gs:// model download             ``60``
    MODEL_CACHE_DIR             where gs:// models are cached               temp dir
    LOG_LEVEL                   DEBUG / INFO / WARNING / ERROR              ``INFO``
    LABELS_PATH                 labels, one a line (local or gs://)         model metadata
    IMAGE_MEAN / IMAGE_STD      pictures fed as (pixel - mean) / std        model metadata
    MAX_IMAGE_PIXELS            picture size limit (413 above it)           4096 x 4096
    GOOGLE_CLOUD_PROJECT        project named in log lines' trace field     metadata server
    GCE_METADATA_HOST           the metadata server asked for the project   metadata.google.internal
    ==========================  ==========================================  ==================

    ``IMAGE_MEAN`` and ``IMAGE_STD`` take one value or one per channel, comma-separated;
    either alone leaves the other at 0 (mean) or 1 (std).

    ``MODEL_REPOSITORY`` excludes ``MODEL_PATH`` and the settings that describe that one
    model (``MODEL_NAME``, ``MODEL_VERSION``, ``LABELS_PATH``, ``IMAGE_MEAN``,
    ``IMAGE_STD``): a repository's models are named by their folders and carry their own
    metadata.
    """

    model_path: str
    model_name: str = "model"
    model_version: str = "1"
    pool_size: int = 1
    num_threads: int = 1
    backend: str | None = None
    engine: str | None = None
    weight_cache_dir: Path = DEFAULT_WEIGHT_CACHE_DIR
    max_request_bytes: int = 10 * 1024 * 1024
    max_batch_size: int = 64
    gcs_timeout: float = 60.0
    cache_dir: Path = Path(tempfile.gettempdir()) / "tflite-model-cache"
    log_level: str = "INFO"
    body_timeout: float = 20.0
    memory_limit: int = 0  # 0: not known (unlimited)
    workers: int = 1
    request_memory_budget: int = 0  # 0: derived from memory_limit and workers
    admission_timeout: float = 5.0

    labels_path: str | None = None
    image_mean: tuple[float, ...] | None = None
    image_std: tuple[float, ...] | None = None
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    project_id: str | None = None
    metadata_host: str = "metadata.google.internal"
    model_repository: str | None = None
    repository_poll: float = 0.0  # 0: listed once per instance

    def request_budget(self, footprint: ModelFootprint | None = None) -> int:
        """Bytes of request memory this process admits at once (0: no budget).

        ``REQUEST_MEMORY_BUDGET_BYTES`` when set; else a share of what the instance's memory
        leaves after the model's ``footprint`` (:func:`serving.memory.request_budget`). With
        a repository, the share set aside for requests from the start
        (:func:`serving.memory.repository_shares`).
        """
        if self.model_repository:
            return self.repository_shares().requests
        if self.request_memory_budget:
            return self.request_memory_budget
        return memory.request_budget(self.memory_limit, self.workers, footprint)

    def repository_shares(self) -> memory.RepositoryShares:
        """One worker's memory for a repository's models and for its requests."""
        return memory.repository_shares(
            self.memory_limit, self.workers, self.max_request_bytes, self.request_memory_budget
        )

    def load_options(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`serving.model.Model.load` these settings give."""
        return {
            "backend": self.backend,
            "engine": self.engine,
            "pool_size": self.pool_size,
            "num_threads": self.num_threads,
            "max_batch_size": self.max_batch_size,
            "weight_cache_dir": self.weight_cache_dir,
            "lock_timeout": self.gcs_timeout,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; a bad value raises :class:`ConfigError` naming the variable."""
        env = os.environ if environ is None else environ
        backend = env.get("SERVING_BACKEND") or None
        if backend is not None and backend not in BACKENDS:
            raise ConfigError(f"SERVING_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
        engine = env.get("SERVING_ENGINE") or None
        if engine is not None and engine not in ENGINES:
            raise ConfigError(f"SERVING_ENGINE={engine!r} is not one of {', '.join(ENGINES)}")
        log_level = env.get("LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL={log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        repository = env.get("MODEL_REPOSITORY") or None
        if repository is not None:
            _check_repository_alone(env)
        return cls(
            model_path=env.get("MODEL_PATH") or str(BUNDLED_MODEL),
            model_name=_name(env, "MODEL_NAME", "model"),
            model_version=_name(env, "MODEL_VERSION", "1"),
            pool_size=_positive_int(env, "INTERPRETER_POOL_SIZE", _usable_cpus()),
            num_threads=_positive_int(env, "INTERPRETER_THREADS", 1),
            backend=backend,
            engine=engine,
            weight_cache_dir=Path(env.get("WEIGHT_CACHE_DIR") or cls.weight_cache_dir),
            max_request_bytes=_positive_int(env, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            max_batch_size=_positive_int(env, "MAX_BATCH_SIZE", cls.max_batch_size),
            gcs_timeout=_positive_float(env, "GCS_TIMEOUT_SECONDS", cls.gcs_timeout),
            cache_dir=Path(env.get("MODEL_CACHE_DIR") or cls.cache_dir),
            log_level=log_level,
            body_timeout=_positive_float(env, "BODY_TIMEOUT_SECONDS", cls.body_timeout),
            memory_limit=_positive_int(env, "MEMORY_LIMIT_BYTES", _instance_memory()),
            workers=_positive_int(env, "WORKERS", 1),
            request_memory_budget=_positive_int(env, "REQUEST_MEMORY_BUDGET_BYTES", 0),
            admission_timeout=_positive_float(
                env, "ADMISSION_TIMEOUT_SECONDS", cls.admission_timeout
            ),
            labels_path=env.get("LABELS_PATH") or None,
            image_mean=_floats(env, "IMAGE_MEAN", nonzero=False),
            image_std=_floats(env, "IMAGE_STD", nonzero=True),
            max_image_pixels=_positive_int(env, "MAX_IMAGE_PIXELS", cls.max_image_pixels),
            project_id=env.get("GOOGLE_CLOUD_PROJECT") or None,
            metadata_host=env.get("GCE_METADATA_HOST") or cls.metadata_host,
            model_repository=repository,
            repository_poll=_non_negative_float(env, "MODEL_REPOSITORY_POLL_SECONDS", 0.0),
        )


# Settings that describe MODEL_PATH's one model: meaningless beside a repository.
SINGLE_MODEL_ONLY = (
    "MODEL_PATH",
    "MODEL_NAME",
    "MODEL_VERSION",
    "LABELS_PATH",
    "IMAGE_MEAN",
    "IMAGE_STD",
)


def _check_repository_alone(env: Mapping[str, str]) -> None:
    clashing = [key for key in SINGLE_MODEL_ONLY if env.get(key)]
    if clashing:
        raise ConfigError(
            f"MODEL_REPOSITORY={env['MODEL_REPOSITORY']!r} and {clashing[0]}={env[clashing[0]]!r} "
            f"are both set: {clashing[0]} is for single-model mode; set one or the other"
        )


def _name(env: Mapping[str, str], key: str, default: str) -> str:
    value = env.get(key) or default
    if not NAME.fullmatch(value):
        raise ConfigError(f"{key}={value!r} {NAME_RULE}")
    return value


def _positive_int(env: Mapping[str, str], key: str, default: int) -> int:
    return _positive(env, key, default, int, "an integer")


def _positive_float(env: Mapping[str, str], key: str, default: float) -> float:
    return _positive(env, key, default, float, "a number")


def _positive(
    env: Mapping[str, str], key: str, default: N, parse: Callable[[str], N], kind: str
) -> N:
    rule = "at least 1" if parse is int else "greater than 0"
    return _number(env, key, default, parse, kind, lambda value: value > 0, rule)


def _non_negative_float(env: Mapping[str, str], key: str, default: float) -> float:
    def fits(value: float) -> bool:
        return math.isfinite(value) and value >= 0

    rule = "0 (off) or a positive number of seconds"
    return _number(env, key, default, float, "a number", fits, rule)


def _number(
    env: Mapping[str, str],
    key: str,
    default: N,
    parse: Callable[[str], N],
    kind: str,
    fits: Callable[[N], bool],
    rule: str,
) -> N:
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError as e:
        raise ConfigError(f"{key}={raw!r} is not {kind}") from e
    if not fits(value):
        raise ConfigError(f"{key}={raw!r} must be {rule}")
    return value


def _floats(env: Mapping[str, str], key: str, *, nonzero: bool) -> tuple[float, ...] | None:
    """One finite number or several, comma-separated (per channel); None when unset."""
    raw = env.get(key)
    if not raw:
        return None
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError as e:
        raise ConfigError(f"{key}={raw!r} is not a number or comma-separated numbers") from e
    if not all(math.isfinite(v) for v in values) or (nonzero and 0.0 in values):
        need = "finite and non-zero" if nonzero else "finite"
        raise ConfigError(f"{key}={raw!r}: every value must be {need}")
    return values
