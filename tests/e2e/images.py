"""Tiny test images: a coloured square with seeded noise, so that each image is distinct."""

from __future__ import annotations

import io
import random


def png(color: tuple[int, int, int], seed: int) -> bytes:
    from PIL import Image

    rnd = random.Random(seed)
    im = Image.new("RGB", (32, 32), color)
    for _ in range(60):
        im.putpixel(
            (rnd.randrange(32), rnd.randrange(32)), tuple(min(255, max(0, c + rnd.randint(-40, 40))) for c in color)
        )
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()
