"""Calibration and evaluation data: ``.npy``, ``.npz`` or a directory of images.

- ``.npy``: one array, for a model with one input.
- ``.npz``: one array per input, named after the input (``labels`` optional); an archive
  with a single array also fits a single-input model whatever its key.
- a directory of images: resized to the input's height and width, grey or RGB as its
  channels say; pixel values 0..255 are multiplied by ``--scale`` (default 1/255).

``--scale``, ``--mean`` and ``--std`` map the data to what the model expects,
``x * scale`` then ``(x - mean) / std`` (``mean``/``std`` may list one value per channel).
Data must fit the model's inputs: same rank, same sizes where the model fixes them and a
dtype that converts without guessing; anything else is a :class:`ConvertError` naming the
file, the input and both shapes or dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.errors import ConvertError
from convert.specs import InputSpec, shape_text

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
LABELS_KEY = "labels"
# What a .npy file and a .npz (zip) archive start with.
_NUMPY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}
SPLIT_SEED = 0


@dataclass(frozen=True)
class Preprocessing:
    """``x * scale`` then ``(x - mean) / std``; ``scale=None`` means 1/255 for images, else 1."""

    scale: float | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @property
    def explicit(self) -> bool:
        """Whether the user asked for any transformation."""
        return self.scale is not None or self.mean != (0.0,) or self.std != (1.0,)

    def apply(self, x: np.ndarray, default_scale: float) -> np.ndarray:
        """The transformed float32 array."""
        scale = default_scale if self.scale is None else self.scale
        x = x.astype(np.float32) * np.float32(scale)
        return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)


@dataclass(frozen=True)
class Dataset:
    """Arrays by input name (same number of samples each), labels when given, origin."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    origin: str

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def take(self, indices: np.ndarray, origin: str) -> Dataset:
        """The samples at ``indices``, described as ``origin``."""
        labels = None if self.labels is None else self.labels[indices]
        return Dataset({k: v[indices] for k, v in self.arrays.items()}, labels, origin)


def load_dataset(
    path: Path, inputs: tuple[InputSpec, ...], pre: Preprocessing, option: str
) -> Dataset:
    """Load and check the data at ``path`` given as ``option`` (``--calibration``/``--eval``)."""
    if not path.exists():
        raise ConvertError(f"{option} {path}: no such file or directory")
    if path.is_dir():
        return _load_images(path, inputs, pre, option)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ConvertError(
            f"{option} {path}: expected a .npy file, a .npz file or a directory of images"
        )
    with path.open("rb") as file:
        head = file.read(len(_NUMPY_MAGIC[suffix]))
    if head != _NUMPY_MAGIC[suffix]:
        # Else numpy takes the bytes for a pickle and suggests allow_pickle=True: unsafe,
        # and no help for a file that is no NumPy data at all.
        saver = "numpy.save" if suffix == ".npy" else "numpy.savez"
        raise ConvertError(
            f"{option} {path}: not a NumPy {suffix} file (its first bytes are not a "
            f"{suffix} header); write it with {saver}"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        raw = {"": loaded} if suffix == ".npy" else {k: loaded[k] for k in loaded.files}
    except Exception as e:  # ValueError (pickled objects), OSError, BadZipFile, ...
        raise ConvertError(f"{option} {path}: not a readable NumPy {suffix} file ({e})") from e
    labels = raw.pop(LABELS_KEY, None)
    arrays = _match_inputs(raw, inputs, path, option)
    where = f"{option} {path}"
    checked = {spec.name: _fit(arrays[spec.name], spec, pre, where) for spec in inputs}
    return _dataset(checked, labels, path, option)


def split(data: Dataset, samples: int, eval_given: bool) -> tuple[Dataset, Dataset | None]:
    """(up to ``samples`` for calibration, the held-out slice or None when ``--eval`` is given).

    Samples are shuffled with a fixed seed. Without ``--eval``, a fifth of the data (at most
    1000 samples, at least one when there are two or more) is held out and never calibrated on.
    """
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data))
    held_out = 0 if eval_given or len(data) < 2 else max(1, min(len(data) // 5, 1000))
    calibration = data.take(order[held_out:][:samples], data.origin)
    if held_out == 0:
        return calibration, None
    eval_origin = f"{held_out} samples of {data.origin} held out from calibration"
    return calibration, data.take(order[:held_out], eval_origin)


def _match_inputs(
    raw: dict[str, np.ndarray], inputs: tuple[InputSpec, ...], path: Path, option: str
) -> dict[str, np.ndarray]:
    """Arrays keyed by input name: by key, or the single array of a single-input model."""
    names = [spec.name for spec in inputs]
    if "" in raw:  # a .npy file
        if len(inputs) != 1:
            raise ConvertError(
                f"{option} {path}: a .npy file holds one array but the model has "
                f"{len(inputs)} inputs ({', '.join(names)}); use a .npz with those keys"
            )
        return {names[0]: raw[""]}
    if len(inputs) == 1 and len(raw) == 1:
        return {names[0]: next(iter(raw.values()))}
    missing = [n for n in names if n not in raw]
    if missing:
        found = ", ".join(raw) or "none"
        raise ConvertError(
            f"{option} {path}: no array for input {missing[0]!r}; expected keys "
            f"{', '.join(names)} (and optionally {LABELS_KEY}), found {found}"
        )
    return {n: raw[n] for n in names}


def _fit(x: np.ndarray, spec: InputSpec, pre: Preprocessing, origin: str) -> np.ndarray:
    """``x`` checked against ``spec`` and converted to its dtype (preprocessed if float)."""
    where = f"{origin}: input {spec.name!r}"
    if not _shape_fits(x.shape, spec.shape):
        raise ConvertError(
            f"{where} expects shape {spec.shape_text} but the data has shape {shape_text(x.shape)}"
        )
    if spec.dtype.kind == "f":
        if x.dtype.kind == "f" or (x.dtype.kind in "iu" and pre.explicit):
            return pre.apply(x, 1.0).astype(spec.dtype, copy=False)
        if x.dtype.kind in "iu":
            raise ConvertError(
                f"{where} expects {spec.dtype} but the data is {x.dtype}; pass --scale "
                "(e.g. --scale 0.00392156862745098 for 0..255 pixels) or save float data"
            )
    elif spec.dtype.kind in "iu" and x.dtype.kind in "iu":
        if (
            not np.can_cast(x.dtype, spec.dtype)
            and x.size
            and (x.min() < np.iinfo(spec.dtype).min or x.max() > np.iinfo(spec.dtype).max)
        ):
            raise ConvertError(f"{where}: values of the {x.dtype} data overflow {spec.dtype}")
        return x.astype(spec.dtype)
    elif x.dtype == spec.dtype:
        return x
    raise ConvertError(f"{where} expects {spec.dtype} but the data is {x.dtype}")


def _shape_fits(shape: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    """Same rank; every dimension but the first (samples) equal where the model fixes it."""
    if len(shape) != len(expected) or len(shape) == 0:
        return False
    return all(e is None or e == s for s, e in zip(shape[1:], expected[1:], strict=True))


def _dataset(
    arrays: dict[str, np.ndarray], labels: np.ndarray | None, path: Path, option: str
) -> Dataset:
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{n} has {c}" for n, c in counts.items())
        raise ConvertError(f"{option} {path}: inputs disagree on the number of samples: {listed}")
    count = next(iter(counts.values()))
    if count == 0:
        raise ConvertError(f"{option} {path}: holds no samples")
    if labels is not None and (labels.ndim != 1 or len(labels) != count):
        raise ConvertError(
            f"{option} {path}: '{LABELS_KEY}' must hold one class index per sample "
            f"({count}), found shape {shape_text(labels.shape)}"
        )
    if labels is not None and labels.dtype.kind not in "iu":
        raise ConvertError(f"{option} {path}: '{LABELS_KEY}' must be integers, not {labels.dtype}")
    return Dataset(arrays, labels, f"{path.name} ({count} samples)")


def _load_images(
    directory: Path, inputs: tuple[InputSpec, ...], pre: Preprocessing, option: str
) -> Dataset:
    """Every image under ``directory`` (sorted), resized to the single image input."""
    if len(inputs) != 1:
        names = ", ".join(spec.name for spec in inputs)
        raise ConvertError(
            f"{option} {directory}: a directory of images fits one image input; "
            f"the model has {len(inputs)} ({names}); use a .npz"
        )
    spec = inputs[0]
    shape = spec.shape
    channels = shape[3] if len(shape) == 4 else 1
    if len(shape) not in (3, 4) or None in shape[1:3] or channels not in (1, 3):
        raise ConvertError(
            f"{option} {directory}: input {spec.name!r} of shape {spec.shape_text} is not an "
            "image input (batch, height, width[, 1 or 3 channels]); use .npy or .npz data"
        )
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConvertError(f"{option} {directory}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    from PIL import Image, UnidentifiedImageError

    height, width = shape[1], shape[2]
    pixels = []
    for file in files:
        try:
            with Image.open(file) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                pixels.append(np.asarray(image.resize((width, height), Image.BILINEAR)))
        except UnidentifiedImageError as e:  # its message repeats the file name
            raise ConvertError(
                f"{option} {file}: not a readable image (no image format recognises its content)"
            ) from e
        except OSError as e:
            raise ConvertError(f"{option} {file}: not a readable image ({e})") from e
    x = np.stack(pixels)
    if len(shape) == 4 and channels == 1:
        x = x[..., np.newaxis]
    fitted = pre.apply(x, 1.0 / 255.0).astype(spec.dtype) if spec.dtype.kind == "f" else x
    return Dataset({spec.name: fitted}, None, f"{directory.name}/ ({len(files)} images)")
