"""The one error type decoding raises: it names the field that is wrong."""

from __future__ import annotations

import msgspec


class ContractError(ValueError):
    """A message does not meet its contract.

    ``reason`` is a stable machine-readable word (used as the dead-letter reason), ``detail``
    says what is wrong and where (``Expected `int`, got `str` - at `$.data.revision```).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def from_msgspec(reason: str, exc: msgspec.MsgspecError, prefix: str = "$") -> ContractError:
    """Rewrite msgspec's ``$`` path so it points into the enclosing document."""
    text = str(exc)
    if " - at `$" not in text:
        text = f"{text} - at `$`"
    if prefix != "$":
        text = text.replace("`$", f"`{prefix}")
    return ContractError(reason, text)
