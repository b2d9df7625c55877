"""Artwork named by URL becomes a Fourthwall image, once per content and shop.

A design region may name its artwork by ``image_url`` (hosted by the producer) instead of a
Fourthwall ``image_id``. Before the customization call each such artwork is fetched, read
(PNG or JPEG: its size comes from its own header), and looked up by its content hash in the
ledger: an artwork this shop uploaded before is used as it is; a new one is uploaded as
Fourthwall documents it (upload URL, PUT, save to the media library) and its image id kept.
So a retry, a redelivery or another design with the same artwork uploads nothing twice.
"""

from __future__ import annotations

import hashlib
import struct

from consumers.ports import ArtworkError, ArtworkSource, DesignLedger, Fourthwall, Picture
from contracts.events import DesignApprovedV1

UNSUPPORTED = "ARTWORK_UNSUPPORTED_TYPE"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, ...): not DHT (C4), JPG (C8), DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def picture(data: bytes) -> Picture:
    """What ``data`` is, read from its own header: PNG or JPEG, else ``ArtworkError``."""
    size = _png_size(data) or _jpeg_size(data)
    if size is None:
        raise ArtworkError(
            UNSUPPORTED,
            f"the artwork is not a PNG or JPEG image (first bytes {data[:8].hex()})",
            retryable=False,
        )
    content_type, extension, width, height = size
    if width <= 0 or height <= 0:
        raise ArtworkError(
            UNSUPPORTED, f"the artwork is {width} x {height} pixels", retryable=False
        )
    return Picture(
        data=data,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _png_size(data: bytes) -> tuple[str, str, int, int] | None:
    # The signature, then the IHDR chunk: length (4), "IHDR", width (4), height (4).
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return "image/png", "png", width, height


def _jpeg_size(data: bytes) -> tuple[str, str, int, int] | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return "image/jpeg", "jpg", width, height
        at += 2 + length
    return None


def urls_of(design: DesignApprovedV1) -> list[str]:
    """The artwork URLs the design names, each once, in order."""
    return list(dict.fromkeys(r.image_url for r in design.regions if r.image_url))


async def image_ids(
    design: DesignApprovedV1,
    *,
    source: ArtworkSource,
    ledger: DesignLedger,
    fourthwall: Fourthwall,
) -> dict[str, str]:
    """Each artwork URL of ``design`` → the Fourthwall image id it is (uploaded if new).
    Raises ``ArtworkError`` for an artwork that cannot be had and ``UpstreamError`` for a
    refused upload."""
    found: dict[str, str] = {}
    for url in urls_of(design):
        art = picture(await source.fetch(url))
        image_id = await ledger.uploaded_image(design.shop_id, art.content_hash)
        if image_id is None:
            image = await fourthwall.upload_image(design.shop_id, art)
            await ledger.record_uploaded_image(design.shop_id, art.content_hash, image.id)
            image_id = image.id
        found[url] = image_id
    return found
