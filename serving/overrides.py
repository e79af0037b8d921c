"""Settings that supply or override a model's metadata: LABELS_PATH, IMAGE_MEAN, IMAGE_STD."""

from __future__ import annotations

from serving.errors import ServingError
from serving.model import Model
from serving.model.metadata import parse_labels, with_overrides
from serving.settings import ConfigError, Settings
from serving.storage import source


def apply(model: Model, settings: Settings) -> None:
    """Give ``model`` the labels and normalisation the settings name (before it is shared).

    Raises :class:`ConfigError` naming the variable when the file cannot be read or the
    values fit no output or input.
    """
    found = model.metadata
    if settings.labels_path:
        labels = read_labels(settings)
        try:
            found = with_overrides(found, model.signatures, labels=labels)
        except ValueError as e:
            raise ConfigError(f"LABELS_PATH={settings.labels_path} {e}") from e
    if settings.image_mean is not None or settings.image_std is not None:
        try:
            found = with_overrides(
                found, model.signatures, mean=settings.image_mean, std=settings.image_std
            )
        except ValueError as e:
            raise ConfigError(f"IMAGE_MEAN/IMAGE_STD: {e}") from e
    model.annotate(found)


def read_labels(settings: Settings) -> tuple[str, ...]:
    """The labels file (local, or gs:// fetched and cached like the model), one label a line."""
    path = settings.labels_path or ""
    try:
        fetched = source.fetch(path, cache_dir=settings.cache_dir, timeout=settings.gcs_timeout)
        text = fetched.path.read_text(encoding="utf-8")
    except ServingError as e:
        raise ConfigError(f"LABELS_PATH={path}: {e.message.replace('model ', '')}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"LABELS_PATH={path}: not a readable UTF-8 text file ({e})") from e
    labels = parse_labels(text)
    if not labels or not all(label.strip() for label in labels):
        raise ConfigError(f"LABELS_PATH={path}: one non-blank label a line is needed")
    return labels
