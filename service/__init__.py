"""merch-pipeline's adapters and wiring: everything that touches the world.

Subpackages by role: ``broker`` (topology, codec, headers, consume loop, publisher, the
connection and the consumers' on/off switches), ``upstreams`` (Fourthwall and Luigi's Box
clients, error taxonomy), ``store`` (the ledger), ``quota``, ``webhooks``, ``api`` (the Litestar
app: health, webhook, admin controllers), ``observability``; and the developer tools kept out of
the runtime path: ``sandbox`` (the contract-faithful fake of both upstreams), ``demo``,
``samples`` and ``testing``. ``bootstrap`` is the one composition root; ``cli`` is the entry
point.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("merch-pipeline")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
