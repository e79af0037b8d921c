"""Write the example digit pictures ``model/examples/<digit>.png`` (``make examples``).

Each is the first sample of that digit in scikit-learn's bundled 8x8 digits, as the
bundled model sees its input: an 8x8 grey PNG, white ink on black (0 background, 255 full
ink; scikit-learn's 0..16 scaled by 255 / 16 and rounded). A dark-on-white picture must be
inverted (255 - pixel) before it is sent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DIGITS = (0, 3, 7)


def write(out_dir: Path = HERE) -> list[Path]:
    """Write one PNG per digit in :data:`DIGITS`; return their paths."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    written = []
    for digit in DIGITS:
        index = int(np.flatnonzero(data.target == digit)[0])
        pixels = np.round(data.images[index] * 255 / 16).astype(np.uint8)
        path = out_dir / f"{digit}.png"
        Image.fromarray(pixels, "L").save(path, "PNG", optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
