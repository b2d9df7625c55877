"""Every design can be named in a URL, whatever its ids hold, and the name leads back to it."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.ports import DesignKey
from service.design_refs import design_key, design_link, design_ref
from service.errors import ActionError

PATTERN = re.compile(r"^(~[A-Za-z0-9_-]+|[^:/~][^:/]*:[^:/]+(:[0-9]+)?)$")  # the path parameter's


IDS = st.text(
    st.characters(blacklist_characters="\x7f", blacklist_categories=("Cs",), min_codepoint=0x20),
    min_size=1,
    max_size=60,
)


@given(shop=IDS, design=IDS, revision=st.integers(1, 2**31 - 1))
def test_any_ids_make_a_ref_that_names_them_back(shop: str, design: str, revision: int) -> None:
    key = DesignKey(shop, design, revision)
    ref = design_ref(key)
    assert PATTERN.match(ref) and "/" not in ref and "%" not in ref
    assert design_key(ref) == key
    assert design_link(key) == f"/admin/designs/{ref}"


def test_plain_ids_keep_the_readable_form_and_odd_ones_get_the_token() -> None:
    assert design_ref(DesignKey("shop-1", "dsg-7", 2)) == "shop-1:dsg-7:2"
    assert design_key("shop-1:dsg-7") == DesignKey("shop-1", "dsg-7", 1)
    # a tab: the contract refuses it now, but a ledger may hold a row from before
    for odd in ("d:1:2", "a/b", "50%", "~x", "two words", "ü mlaut", "legacy\tid"):
        ref = design_ref(DesignKey("shop-1", odd, 1))
        assert ref.startswith("~") and design_key(ref).design_id == odd


@pytest.mark.parametrize(
    "ref",
    [
        "shop-only",
        "a:b:one",
        "a:b:²",  # a digit to str.isdigit, not to int()
        "a:b:99999999999999999999999",  # past the ledger's INTEGER
        "a:b:0",
        "~" + base64.urlsafe_b64encode(b'["s","d\\u0000",1]').decode().rstrip("="),  # NUL
        "~!!!",
        "~" + "e30",
        ":x",
        design_ref(DesignKey("s", "d", 1))[:-1] + "2147483648",
    ],
)
def test_a_ref_that_names_nothing_is_a_clear_400(ref: str) -> None:
    with pytest.raises(ActionError) as caught:
        design_key(ref)
    assert caught.value.status == 400 and caught.value.detail
