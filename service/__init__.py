"""merch-pipeline's adapters and wiring: everything that touches the world.

Subpackages by role: ``broker`` (topology, codec, consume loop, publisher), ``upstreams``
(Fourthwall and Luigi's Box clients, error taxonomy), ``api`` (Litestar health/admin app),
``sandbox`` (the contract-faithful fake of both upstreams). ``bootstrap`` is the one composition
root; ``cli`` is the entry point.
"""
