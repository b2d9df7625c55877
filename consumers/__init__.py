"""Message handlers: plain async functions taking a decoded event and explicit ports.

No broker or HTTP library is imported here; ``service`` wires real adapters in and the unit
tests wire fakes in.
"""
