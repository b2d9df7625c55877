"""The upstreams' documented examples (``tests/fixtures/upstreams``), each with the page it comes
from, and a comparison of a JSON value's shape against a documented one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "upstreams"


def documented(name: str) -> dict[str, Any]:
    example: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    assert example["source"].startswith("https://docs."), name  # every example names its page
    return example


def undocumented(answer: Any, example: Any, at: str = "$") -> list[str]:
    """Where ``answer`` departs from the documented ``example``: a key the page does not show,
    or a value of another JSON type (a null stands for any value; a list is compared by its
    items against the example's first item)."""
    if answer is None or example is None:
        return []
    if isinstance(example, dict):
        if not isinstance(answer, dict):
            return [f"{at}: {type(answer).__name__}, documented an object"]
        found = [f"{at}.{k}: not documented" for k in answer if k not in example]
        for key in answer.keys() & example.keys():
            found += undocumented(answer[key], example[key], f"{at}.{key}")
        return found
    if isinstance(example, list):
        if not isinstance(answer, list):
            return [f"{at}: {type(answer).__name__}, documented a list"]
        return (
            [
                f
                for n, item in enumerate(answer)
                for f in undocumented(item, example[0], f"{at}[{n}]")
            ]
            if example
            else []
        )
    if isinstance(example, bool) != isinstance(answer, bool):
        return [f"{at}: {answer!r}, documented like {example!r}"]
    if isinstance(example, int | float) and isinstance(answer, int | float):
        return []
    if type(answer) is not type(example):
        return [f"{at}: {answer!r}, documented like {example!r}"]
    return []


def missing(answer: dict[str, Any], example: dict[str, Any]) -> list[str]:
    """The documented top-level keys an answer leaves out."""
    return sorted(example.keys() - answer.keys())
