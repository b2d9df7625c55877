"""Standard Webhooks verification with the specification's own implementation (PyPI
``standardwebhooks``), over every active secret of every producer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.settings import Settings


@dataclass(frozen=True)
class Producer:
    name: str
    verifiers: tuple[Webhook, ...]


def producers(settings: Settings) -> tuple[Producer, ...]:
    """Producers from ``[[producers]]``, plus ``WEBHOOK_SECRETS`` as producer ``default``."""
    found = [
        Producer(p.name, tuple(Webhook(s.reveal()) for s in p.secrets))
        for p in settings.producers
        if p.secrets
    ]
    if settings.webhook_secrets:
        found.append(
            Producer("default", tuple(Webhook(s.reveal()) for s in settings.webhook_secrets))
        )
    return tuple(found)


def verify(
    producers: tuple[Producer, ...],
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float,
    now: float | None = None,
) -> Producer | None:
    """The producer whose secret signed this delivery, or None. The timestamp must lie within
    ``tolerance_s`` of now (the library itself allows at most five minutes)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        sent = float(lowered.get("webhook-timestamp", ""))
        text = body.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return None
    wanted: dict[str, str] = {
        k: lowered[k]
        for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
        if k in lowered
    }
    for producer in producers:
        for verifier in producer.verifiers:
            try:
                verifier.verify(text, wanted, json_parse=False)
            except (WebhookVerificationError, ValueError):
                continue
            return producer
    return None
