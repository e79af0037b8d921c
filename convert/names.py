"""``--input-names`` / ``--output-names``: the served tensor names, whatever the save gave.

The names a ``.tflite`` signature carries are the API clients send and read (``"inputs":
{"pixels": ...}``, V2 ``"name": "pixels"``). They come from how the model was saved: the
same Keras model is ``pixels -> digit`` from a ``.keras`` file (its layers' names), but
``inputs -> output_0`` through ``tf.saved_model.save``. These flags fix them: either the
new names in the signature's order (``--input-names a,b``) or ``OLD=NEW`` pairs
(``--output-names output_0=digit``). Parsed and checked here without TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from convert.errors import ConvertError

# TensorFlow's rule for op names, which a signature input's placeholder gets: a name
# outside it would fail deep in TensorFlow, with TensorFlow's words.
_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/]*\Z")


def parse(text: str) -> tuple[str, ...]:
    """``a,b`` or ``old=new,...`` as its items (argparse type); ValueError when malformed."""
    items = tuple(item.strip() for item in text.split(","))
    pairs = ["=" in item for item in items]
    if any(pairs) and not all(pairs):
        raise ValueError(f"{text!r} mixes NEW and OLD=NEW items: use one form")
    for item in items:
        for name in item.split("=") if "=" in item else [item]:
            if not _NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a tensor name (letters, digits, '_', '.', '-', '/'; "
                    "not starting with '_', '-' or '/')"
                )
        if item.count("=") > 1:
            raise ValueError(f"{item!r}: one '=' per OLD=NEW pair")
    return items


def resolve(items: Sequence[str], names: Sequence[str], what: str) -> dict[str, str]:
    """``{old: new}`` for ``names`` (a signature's inputs or outputs, in order) from the
    flag's ``items``; :class:`ConvertError` naming ``what`` (``--input-names``) when they
    do not fit."""
    if not items:
        return {}
    if "=" in items[0]:
        mapping = dict(item.split("=", 1) for item in items)
        unknown = [old for old in mapping if old not in names]
        if unknown:
            raise ConvertError(
                f"{what}: the model has no tensor {unknown[0]!r}; its names: {', '.join(names)}"
            )
    else:
        if len(items) != len(names):
            raise ConvertError(
                f"{what}: {len(items)} names given for {len(names)} "
                f"tensor{'s' if len(names) != 1 else ''} ({', '.join(names)}, in this order)"
            )
        mapping = dict(zip(names, items, strict=True))
    served = [mapping.get(name, name) for name in names]
    twice = next((name for name in served if served.count(name) > 1), None)
    if twice is not None:
        raise ConvertError(f"{what}: two tensors would be named {twice!r}")
    return {old: new for old, new in mapping.items() if old != new}
