"""A contract-faithful fake of Fourthwall's Open API and Luigi's Box pin scopes (stripe-mock in
spirit): it validates bodies against the seed contracts, answers the documented error codes,
checks auth and HMAC signatures, enforces the per-shop heavy-call limit, lets a customization back
one product only, injects latency and 5xx on request, and records every call it saw."""
