"""Encoded pictures (JPEG, PNG, WebP, BMP, GIF) to a picture input's values, with Pillow.

Pillow is imported on the first picture only, never on a numeric request's path. Each
picture is checked before it is decoded: Pillow's ``Image.open`` reads the header alone,
so a picture of more than ``MAX_IMAGE_PIXELS`` pixels is refused (413) before any pixel
buffer exists; Pillow's own decompression-bomb warning (raised as an error) backs that up.
Then: EXIF orientation applied; converted to the input's channels (``L``: ITU-R 601-2
luma; ``RGB``: alpha dropped); resized to the input's height and width when they differ,
stretched (no crop) with Pillow's ``BILINEAR`` filter, which widens its support when
shrinking so every source pixel counts (antialiased, like ``tf.image.resize(...,
antialias=True)``); a large JPEG is first decoded at a reduced scale (libjpeg's draft
mode, 1/2 to 1/8) no smaller than the target. Pixels then become the input's values by
lookup table (:class:`serving.model.pictures.PictureInput`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import io
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from serving.model.pictures import PictureInput
from serving.settings import DEFAULT_MAX_IMAGE_PIXELS


class PictureFormat(enum.Enum):
    """The picture types accepted; ``value`` is the media type."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    BMP = "image/bmp"
    GIF = "image/gif"

    @property
    def pillow(self) -> str:
        """Pillow's format name."""
        return self.name

    @classmethod
    def sniff(cls, data: bytes) -> PictureFormat | None:
        """The type whose signature ``data`` starts with (its "magic number"), if any.

        Only to say what a body Pillow could not open looks like: decoding trusts Pillow.
        """
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return cls.WEBP
        return next((f for f, magic in _MAGIC.items() if data.startswith(magic)), None)


_MAGIC = {
    PictureFormat.JPEG: b"\xff\xd8\xff",
    PictureFormat.PNG: b"\x89PNG\r\n\x1a\n",
    PictureFormat.GIF: b"GIF8",
    PictureFormat.BMP: b"BM",
}
ALIASES = {"image/jpg": PictureFormat.JPEG}  # a common misspelling, accepted
MEDIA_TYPES = ", ".join(f.value for f in PictureFormat)
_ANY = tuple(f.pillow for f in PictureFormat)
_PREVIEW_BYTES = 12  # of a body that is no picture, shown in the error: enough to recognise
_lock = threading.Lock()
_pil: dict[str, ModuleType] = {}


def picture_format(content_type: str | None) -> PictureFormat | None:
    """The picture type a ``Content-Type`` declares; None for a non-picture body.

    415 naming the accepted types for any other ``image/*`` type.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media.startswith("image/"):
        return None
    found = next((f for f in PictureFormat if f.value == media), None) or ALIASES.get(media)
    if found is None:
        raise UnsupportedMediaType(f"Content-Type {media} is not supported; send {MEDIA_TYPES}")
    return found


def _pillow() -> tuple[Any, Any]:
    """``PIL.Image`` and ``PIL.ImageOps``, imported (and configured) on first use."""
    if not _pil:
        with _lock:
            if not _pil:
                from PIL import Image, ImageOps

                # The size check below refuses big pictures itself; Pillow's own bomb
                # warning must never let one through silently.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                _pil.update(Image=Image, ImageOps=ImageOps)
    return _pil["Image"], _pil["ImageOps"]


def from_base64(text: Any, *, what: str) -> bytes:
    """The bytes of a base64 string (standard or URL-safe alphabet); 400 when it is not."""
    if not isinstance(text, str):
        raise BadRequest(f"{what}: 'b64' must be a string of base64 text")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest(f"{what}: 'b64' is not valid base64: {e}") from e


def to_input(
    pictures: Sequence[bytes],
    picture: PictureInput,
    *,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    declared: PictureFormat | None = None,
    what: str,
) -> np.ndarray:
    """A batch of the input's values, one picture per instance.

    400 for a body that is not a picture (of the ``declared`` type), 413 for one over
    ``max_pixels`` pixels, 400 when the input's normalisation is unknown.
    """
    if not pictures:
        raise BadRequest(f"{what}: no pictures given")
    picture.table()  # 400 with the remedy when the normalisation is unknown
    out: np.ndarray | None = None
    for number, data in enumerate(pictures):
        label = what if len(pictures) == 1 else f"{what}: picture {number}"
        pixels = decode(data, picture, max_pixels=max_pixels, declared=declared, what=label)
        if out is None:
            out = np.empty((len(pictures), *pixels.shape), dtype=picture.dtype)
        elif pixels.shape != out.shape[1:]:
            raise BadRequest(
                f"{label} is {pixels.shape[1]}x{pixels.shape[0]}, picture 0 is "
                f"{out.shape[2]}x{out.shape[1]}: the input has no fixed size, so every "
                "picture of a request must have the same"
            )
        picture.fill(out[number], pixels)
    assert out is not None
    return out


def decode(
    data: bytes,
    picture: PictureInput,
    *,
    max_pixels: int,
    declared: PictureFormat | None = None,
    what: str,
) -> np.ndarray:
    """One picture as uint8 ``(height, width, channels)`` pixels at the input's size."""
    image_module, ops = _pillow()
    kind = declared.value if declared else "picture"
    formats = (declared.pillow,) if declared else _ANY
    try:
        with image_module.open(io.BytesIO(data), formats=formats) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise PayloadTooLarge(_too_large(what, width, height, max_pixels))
            image = _pixels(opened, picture, image_module, ops)
    except (image_module.DecompressionBombError, image_module.DecompressionBombWarning) as e:
        raise PayloadTooLarge(f"{what}: {e} (MAX_IMAGE_PIXELS)") from e
    except image_module.UnidentifiedImageError as e:
        # Pillow's message names only its file object (<_io.BytesIO object at 0x...>).
        raise BadRequest(f"{what}: not a decodable {kind}: {_unidentified(data, declared)}") from e
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        raise BadRequest(f"{what}: not a decodable {kind}: {_reason(e)}") from e
    array = np.asarray(image)
    return array.reshape(array.shape[0], array.shape[1], picture.channels)


def _pixels(image: Any, picture: PictureInput, image_module: Any, ops: Any) -> Any:
    mode = "L" if picture.channels == 1 else "RGB"
    target = (picture.width or image.size[0], picture.height or image.size[1])
    if image.format == "JPEG" and target != image.size:
        side = max(target)  # orientation may swap the sides: ask for both at least this
        image.draft(mode, (side, side))
    image.load()
    if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation
        image = ops.exif_transpose(image)
        target = (picture.width or image.size[0], picture.height or image.size[1])
    if image.mode != mode:
        image = image.convert(mode)
    if image.size != target:
        image = image.resize(target, image_module.Resampling.BILINEAR)
    return image


def _too_large(what: str, width: int, height: int, limit: int) -> str:
    return (
        f"{what}: picture of {width}x{height} = {width * height} pixels is over the limit "
        f"of {limit} pixels (MAX_IMAGE_PIXELS)"
    )


def _unidentified(data: bytes, declared: PictureFormat | None) -> str:
    """What a body no accepted type's decoder recognised looks like, said to its sender."""
    found = PictureFormat.sniff(data)
    if found is not None and declared not in (None, found):
        return f"the data is {found.value}, not {declared.value}"
    if found is not None:
        return f"it begins with the {found.value} signature, but its header is not valid"
    if not data:
        return "received no bytes"
    head = data[:_PREVIEW_BYTES]
    if all(0x20 <= byte < 0x7F for byte in head):
        shown = f"the text '{head.decode('ascii')}'"
    else:
        shown = f"the bytes {head.hex(' ')}"
    more = "..." if len(data) > len(head) else ""
    return f"received {len(data)} bytes starting with {shown}{more}; accepted: {MEDIA_TYPES}"


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
