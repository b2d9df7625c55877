"""What this build is: the package's version and the source revision the image was built from
(``MERCH_PIPELINE_REVISION``, set by the Dockerfile's ``REVISION`` build argument)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from service import __version__

UNKNOWN_REVISION = "unknown"


def version() -> str:
    return __version__


def revision(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("MERCH_PIPELINE_REVISION", "").strip() or UNKNOWN_REVISION


def describe(environ: Mapping[str, str] = os.environ) -> str:
    """``merch-pipeline --version``: ``merch-pipeline 0.1.0 (revision 1a2b3c4)``."""
    return f"merch-pipeline {version()} (revision {revision(environ)})"
