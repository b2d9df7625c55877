"""The README's signed curl example, generated here so a test can keep it true."""

from __future__ import annotations

EXAMPLE = r"""URL="${URL:-http://localhost:8080/webhooks/design-approved}"
SECRET="${SECRET:?set SECRET to one of WEBHOOK_SECRETS, e.g. whsec_...}"
ID="msg_$(date +%s%N)"
TS="$(date +%s)"
BODY="$(printf '{"specversion":"1.0","id":"%s","source":"urn:example:design-tool","type":"merch.design.approved.v1","data":{"shop_id":"shop-1","design_id":"dsg-%s","product_template_id":"pro_tee","regions":[{"region":"front","image_id":"img_logo"}],"product":{"name":"Logo Tee"}}}' "$ID" "$ID")"
KEY_HEX="$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -vtx1 | tr -d ' \n')"
SIG="$(printf '%s' "$ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY_HEX" -binary | base64)"
curl -sS -X POST "$URL" \
  -H 'Content-Type: application/cloudevents+json' \
  -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" \
  --data-binary "$BODY"
"""


def readme_block() -> str:
    return f"```bash\n{EXAMPLE}```\n"
