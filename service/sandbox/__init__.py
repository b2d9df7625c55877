"""A contract-faithful fake of Fourthwall's Open API and Luigi's Box (stripe-mock in spirit),
written from the upstreams' pages alone (it imports no contract, consumer or client of the
service): it validates bodies against the documented shapes, answers the documented error codes,
checks auth and HMAC signatures, enforces the per-shop limits, lets a customization back one
product only, delivers Fourthwall's signed product webhooks, injects latency and 5xx on request,
and records every call it saw."""
