"""Artwork named by URL: read from its own header, uploaded once per content and shop, and
every way it can fail stopping or waiting the design before any heavy call."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import httpx
import msgspec
import pytest

from consumers import artwork, design_approved
from consumers.outcomes import Defer, Done, Reject, Retry
from consumers.ports import ArtworkError
from contracts.events import DesignRegion, ProductFailedV1
from service.sandbox.media import artwork_png
from service.upstreams.artwork import host_allowed
from tests.unit.fakes import FakeFourthwall, FakeLedger, FakeQuota, delivery, upstream_error
from tests.unit.test_handlers import design
from tests.unit.test_handlers import ports as handler_ports


def jpeg(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline start-of-frame with the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x01\x01\x00" + b"\x00" * 6
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_a_png_and_a_jpeg_are_read_from_their_headers() -> None:
    png = artwork.picture(artwork_png("logo", 640, 480))
    assert (png.content_type, png.extension, png.width, png.height) == (
        "image/png",
        "png",
        640,
        480,
    )
    jpg = artwork.picture(jpeg(1200, 900))
    assert (jpg.content_type, jpg.width, jpg.height) == ("image/jpeg", 1200, 900)
    assert png.content_hash != artwork.picture(artwork_png("logo-2", 640, 480)).content_hash


@pytest.mark.parametrize("data", [b"<svg></svg>", b"GIF89a" + b"\x00" * 20, b"", b"\xff\xd8\xff"])
def test_anything_but_a_png_or_jpeg_is_refused_for_good(data: bytes) -> None:
    with pytest.raises(ArtworkError) as refused:
        artwork.picture(data)
    assert refused.value.code == "ARTWORK_UNSUPPORTED_TYPE" and not refused.value.retryable


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.example.com/a.png", True),
        ("https://cdn.example.com:8443/a.png", False),  # another port than the pattern's
        ("http://127.0.0.1:9000/a.png", True),
        ("https://img.shop.example.org/a.png", True),
        ("https://shop.example.org/a.png", False),  # "*." means subdomains only
        ("https://evil.com/cdn.example.com/a.png", False),
        ("https://cdn.example.com.evil.com/a.png", False),
        ("https://169.254.169.254/latest/meta-data", False),
    ],
)
def test_artwork_is_fetched_only_from_allowed_hosts(url: str, allowed: bool) -> None:
    patterns = ("cdn.example.com", "127.0.0.1:9000", "*.shop.example.org")
    assert host_allowed(httpx.URL(url), patterns) is allowed


@dataclass
class FakeSource:
    served: dict[str, bytes | ArtworkError]
    fetched: list[str] = field(default_factory=list)

    async def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        answer = self.served[url]
        if isinstance(answer, ArtworkError):
            raise answer
        return answer


LOGO = "https://cdn.example.com/logo.png"
BACK = "https://cdn.example.com/back.png"


def url_design(**overrides: object) -> design_approved.DesignApprovedV1:
    regions = [
        DesignRegion(region="front", image_url=LOGO),
        DesignRegion(region="back", image_url=BACK),
        DesignRegion(region="sleeve", image_url=LOGO),  # the same artwork twice
    ]
    return design(regions=regions, **overrides)


def ports(
    fourthwall: FakeFourthwall,
    source: FakeSource | None,
    ledger: FakeLedger | None = None,
    quota: FakeQuota | None = None,
) -> design_approved.Ports:
    return handler_ports(fourthwall, ledger, quota, artwork=source)


def served() -> FakeSource:
    return FakeSource({LOGO: artwork_png("logo"), BACK: artwork_png("back")})


async def test_each_artwork_is_uploaded_once_and_named_by_its_image_in_the_customization() -> None:
    fourthwall, ledger = FakeFourthwall(), FakeLedger()
    outcome = await design_approved.handle(
        url_design(), delivery(), ports=ports(fourthwall, served(), ledger)
    )
    assert isinstance(outcome, Done)
    assert len(fourthwall.uploads) == 2  # logo once (two regions), back once
    regions = fourthwall.customizations[0].regions or []
    assert [r.image_id for r in regions] == ["img_up_1", "img_up_2", "img_up_1"]


async def test_an_artwork_uploaded_before_is_not_uploaded_again() -> None:
    """A retry, a redelivery or another design of the shop with the same bytes: the content
    hash finds the image in the ledger."""
    ledger = FakeLedger()
    failing = FakeFourthwall(fail_customization=upstream_error("SERVICE_UNAVAILABLE", True, 503))
    first = await design_approved.handle(
        url_design(), delivery(), ports=ports(failing, served(), ledger)
    )
    assert isinstance(first, Retry) and len(failing.uploads) == 2
    again = FakeFourthwall()
    second = await design_approved.handle(
        url_design(design_id="d-2"), delivery(token="t-2"), ports=ports(again, served(), ledger)
    )
    assert isinstance(second, Done) and again.uploads == []
    assert [r.image_id for r in again.customizations[0].regions or []] == [
        "img_up_1",
        "img_up_2",
        "img_up_1",
    ]


async def test_another_shop_uploads_its_own_copy() -> None:
    ledger = FakeLedger()
    await design_approved.handle(
        url_design(), delivery(), ports=ports(FakeFourthwall(), served(), ledger)
    )
    other = FakeFourthwall()
    await design_approved.handle(
        url_design(shop_id="shop-2"), delivery(token="t-2"), ports=ports(other, served(), ledger)
    )
    assert len(other.uploads) == 2


@pytest.mark.parametrize(
    ("trouble", "code"),
    [
        (ArtworkError("ARTWORK_HOST_NOT_ALLOWED", "not allowed", retryable=False), None),
        (ArtworkError("ARTWORK_HTTP_404", "gone", retryable=False), None),
        (ArtworkError("ARTWORK_TOO_LARGE", "big", retryable=False), None),
        (b"<svg/>", "ARTWORK_UNSUPPORTED_TYPE"),
    ],
)
async def test_an_artwork_that_cannot_be_had_fails_the_design_with_no_heavy_call(
    trouble: bytes | ArtworkError, code: str | None
) -> None:
    fourthwall, quota = FakeFourthwall(), FakeQuota()
    source = FakeSource({LOGO: trouble, BACK: artwork_png("back")})
    outcome = await design_approved.handle(
        url_design(), delivery(), ports=ports(fourthwall, source, quota=quota)
    )
    expected = code or (trouble.code if isinstance(trouble, ArtworkError) else "")
    assert isinstance(outcome, Reject) and outcome.code == expected
    assert outcome.stage == "customization"
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1) and failed.code == expected
    assert fourthwall.customizations == [] and fourthwall.uploads == []
    assert quota.taken == []  # no heavy slot was taken for it


async def test_an_artwork_host_that_is_down_is_retried() -> None:
    source = FakeSource({LOGO: ArtworkError("ARTWORK_HTTP_503", "down", retryable=True)})
    fourthwall = FakeFourthwall()
    outcome = await design_approved.handle(
        url_design(), delivery(), ports=ports(fourthwall, source)
    )
    assert isinstance(outcome, Retry) and outcome.code == "ARTWORK_HTTP_503"
    assert fourthwall.customizations == []


async def test_a_throttled_upload_waits_without_touching_the_heavy_quota() -> None:
    fourthwall = FakeFourthwall(fail_upload=upstream_error("OPEN_API_TOO_MANY_REQUESTS", True, 429))
    quota = FakeQuota()
    outcome = await design_approved.handle(
        url_design(), delivery(), ports=ports(fourthwall, served(), quota=quota)
    )
    assert isinstance(outcome, Defer) and outcome.reason == "upload_throttled"
    assert quota.throttles == [] and quota.taken == []


async def test_without_artwork_hosts_an_artwork_url_is_refused_saying_so() -> None:
    outcome = await design_approved.handle(
        url_design(), delivery(), ports=ports(FakeFourthwall(), None)
    )
    assert isinstance(outcome, Reject) and outcome.code == "ARTWORK_URLS_DISABLED"
    assert "ARTWORK_HOSTS" in outcome.detail


def test_a_region_names_its_artwork_one_way_only() -> None:
    with pytest.raises(ValueError, match="exactly one of image_id and image_url"):
        DesignRegion(region="front", image_id="img_1", image_url=LOGO)
    with pytest.raises(ValueError, match="exactly one"):
        DesignRegion(region="front")
    body = b'{"region": "front", "image_url": "javascript:alert(1)"}'
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=DesignRegion)
