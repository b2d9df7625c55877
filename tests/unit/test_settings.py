from __future__ import annotations

import sys
from pathlib import Path

import pytest

from service.secrets import redact_url
from service.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT"),
        ({"HTTP_PORT": "70000"}, "HTTP_PORT"),
        ({"PREFETCH": "0"}, "PREFETCH"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"FOURTHWALL_API_URL": "not a url"}, "FOURTHWALL_API_URL"),
        ({"FOURTHWALL_USERNAME": "u"}, "FOURTHWALL_PASSWORD"),
        ({"LUIGISBOX_PRIVATE_KEY": "k"}, "LUIGISBOX_TRACKER_ID"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"RETRY_DELAYS_S": "1,-2"}, "RETRY_DELAYS_S"),
        ({"PIN_POSITION": "first"}, "PIN_POSITION"),
        ({"ITEM_IDENTITY_TEMPLATE": "{sku}"}, "ITEM_IDENTITY_TEMPLATE"),
        ({"CONFIG_FILE": "/does/not/exist.toml"}, "CONFIG_FILE"),
        ({"FAILPOINTS": "after_record_product=1"}, "FAILPOINTS"),
    ],
)
def test_bad_values_name_their_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert caught.value.key == key
    assert key in str(caught.value)


def test_failpoints_need_the_test_mode() -> None:
    env = {"FAILPOINTS": "after_record_product=1", "MERCH_PIPELINE_TEST_MODE": "1"}
    assert load_settings(env).failpoints == "after_record_product=1"


def test_a_build_without_failpoints_or_a_bad_spec_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.bootstrap import failpoints_of

    settings = load_settings({"FAILPOINTS": "after_x=two", "MERCH_PIPELINE_TEST_MODE": "1"})
    with pytest.raises(SettingsError, match="after_x=two") as bad:
        failpoints_of(settings)
    monkeypatch.setitem(sys.modules, "service.failpoints", None)  # as in the image
    with pytest.raises(SettingsError, match="no failpoints") as missing:
        failpoints_of(settings)
    assert bad.value.key == missing.value.key == "FAILPOINTS"


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.http_port == 8080
    assert settings.pins.all_window_days == 14


def test_secrets_never_show_in_repr_or_errors(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "FOURTHWALL_USERNAME": "u",
            "FOURTHWALL_PASSWORD": "hunter2-fw",
            "LUIGISBOX_TRACKER_ID": "t",
            "LUIGISBOX_PRIVATE_KEY": "lb-secret",
            "ADMIN_TOKEN": "admin-secret",
            "AMQP_URL": "amqp://u:broker-secret@h/",
        }
    )
    text = repr(settings) + str(settings)
    for secret in ("hunter2-fw", "lb-secret", "admin-secret", "broker-secret"):
        assert secret not in text
    assert settings.fourthwall_password is not None
    assert settings.fourthwall_password.reveal() == "hunter2-fw"
    assert redact_url("amqp://u:broker-secret@h:5672/v") == "amqp://u:***@h:5672/v"


def test_config_file_shops_and_pins(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[pins]\nmodel = "similar"\nposition = 2\n\n[[shops]]\nshop_id = "a"\n'
        'fourthwall_token = "zq-token-value"\nluigisbox_tracker_id = "t"\n'
        'luigisbox_private_key = "k"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(path), "PIN_POSITION": "4"})
    assert settings.pins.model == "similar" and settings.pins.position == 4
    shop = settings.shop("a")
    assert shop is not None and shop.fourthwall_token is not None
    assert "zq-token-value" not in repr(shop)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[shops]]\nshop_id = "a"\nfourthwall_pasword = "x"\n', "fourthwall_pasword"),
        ('[[shops]]\nshop_id = "a"\nfourthwall_username = "u"\n', "go together"),
        ('[[shops]]\nshop_id = "a"\n[[shops]]\nshop_id = "a"\n', "more than once"),
        ("not toml = = ", "not valid TOML"),
    ],
)
def test_bad_config_files_are_explained(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=needle) as caught:
        load_settings({"CONFIG_FILE": str(path)})
    assert caught.value.key == "CONFIG_FILE"


def test_a_retired_setting_is_named_with_what_replaced_it_and_ignored() -> None:
    from service.settings import retired_settings

    env = {"DEFER_DELAYS_S": "1,2,4"}
    assert "parked in the ledger" in retired_settings(env)["DEFER_DELAYS_S"]
    assert retired_settings({}) == {}
    load_settings(env)  # still starts
