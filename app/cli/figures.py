"""How the measuring commands (``p2psip bench ...``, ``p2psip sim``) print their figures."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def report(results: Mapping[str, Any], *, as_json: bool) -> None:
    """Print ``results``: ``name: value`` lines (floats to 3 decimals, booleans in lower
    case) or one JSON object (NaN as null)."""
    if as_json:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in results.items()}
        print(json.dumps(clean, indent=2))
        return
    for key, value in results.items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, float):
            text = f"{value:.3f}"
        else:
            text = str(value)
        print(f"{key}: {text}")


__all__ = ["report"]
