"""Write a tool's results as JSON."""
from __future__ import annotations

import json
import os
from typing import Any


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` to ``path`` as indented JSON, creating the folder if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
