"""Sandbox media library: pre-signed upload URLs, the storage behind them, saved images; and an
artwork host that serves PNGs by name (what a producer's CDN would be in the tests and the demo).

As the pages read (shapes.py): the upload URL is asked for (20 a minute per shop), the bytes are
PUT there with the declared ``Content-Type`` and content-length range (the URL is signed for
both: anything else is a 403, as the storage answers), and the file is saved to the media
library, whose image id a region may then name."""

from __future__ import annotations

import secrets
import struct
import zlib
from typing import Any

import msgspec

from service.sandbox import shapes
from service.sandbox.config import SandboxConfig
from service.sandbox.fourthwall import Answer, Limiter, error

STORAGE = "/_sandbox/storage"


class MediaSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.uploads = Limiter(lambda: (config.upload_calls, config.upload_window_s))
        self.tickets: dict[str, dict[str, Any]] = {}  # upload token → what was declared
        self.files: dict[str, dict[str, Any]] = {}  # fileUrl → shop, size, content type
        self.images: dict[str, dict[str, Any]] = {}  # saved image id → shop, fileUrl, size

    def request_upload(self, shop_id: str, body: bytes, base_url: str) -> Answer:
        try:
            request = msgspec.json.decode(body, type=shapes.UploadUrlRequest)
        except msgspec.MsgspecError as exc:
            return error(400, "INVALID_REQUEST_BODY", detail=str(exc))
        if request.size <= 0 or not request.content_type.startswith("image/"):
            return error(400, "INVALID_REQUEST_BODY", detail="an image of a positive size")
        token = secrets.token_urlsafe(18)
        self.tickets[token] = {
            "shop_id": shop_id,
            "content_type": request.content_type,
            "size": request.size,
            "file_name": request.file_name,
        }
        return (
            200,
            {
                "uploadUrl": f"{base_url}{STORAGE}/{token}",
                "fileUrl": f"{base_url}{STORAGE}/files/{token}",
            },
            {},
        )

    def put_upload(self, token: str, headers: dict[str, str], body: bytes) -> Answer:
        ticket = self.tickets.get(token)
        if ticket is None:
            return 403, {"code": "SignatureDoesNotMatch"}, {}
        declared = f"0,{ticket['size']}"
        if (
            headers.get("content-type") != ticket["content_type"]
            or headers.get("x-goog-content-length-range") != declared
            or len(body) > ticket["size"]
        ):
            return 403, {"code": "SignatureDoesNotMatch"}, {}
        file_url_key = f"{STORAGE}/files/{token}"
        self.files[file_url_key] = {**ticket, "bytes": len(body)}
        return 200, {}, {}

    def save_image(self, shop_id: str, body: bytes) -> Answer:
        try:
            request = msgspec.json.decode(body, type=shapes.SaveMediaImage)
        except msgspec.MsgspecError as exc:
            return error(400, "INVALID_REQUEST_BODY", detail=str(exc))
        path = request.file_url[request.file_url.find(STORAGE) :]
        stored = self.files.get(path) if STORAGE in request.file_url else None
        if stored is None or stored["shop_id"] != shop_id:
            return error(400, "MEDIA_FILE_DO_NOT_EXISTS", uri=request.file_url)
        if request.width <= 0 or request.height <= 0:
            return error(400, "INVALID_REQUEST_BODY", detail="width and height are positive")
        image_id = f"img_{secrets.token_urlsafe(12)}"
        self.images[image_id] = {
            "shop_id": shop_id,
            "file_url": request.file_url,
            "width": request.width,
            "height": request.height,
        }
        uri = f"media://images/{image_id}"
        return (
            201,
            {
                "id": image_id,
                "uri": uri,
                "width": request.width,
                "height": request.height,
                "thumbnail": f"{uri}?thumbnail",
                "preview": f"{uri}?preview",
            },
            {},
        )


def artwork_png(name: str, width: int = 64, height: int = 64) -> bytes:
    """A small PNG whose bytes depend on ``name`` (its text chunk), so two names are two
    contents and one name is always the same content."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + bytes([len(name) % 256]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Title\x00" + name.encode())
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
