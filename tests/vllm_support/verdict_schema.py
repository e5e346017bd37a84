"""The tiny test model's served name and the JSON schema that forces well-formed verdicts.

Shared by the real-vLLM tests and by ``offline_judge_run.py``, which runs in the vLLM venv's
interpreter and imports this module from its own folder (it imports nothing but the standard
library, so it loads in either environment).
"""

from __future__ import annotations

from typing import Any

MODEL = "tiny-genrm"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score_1": {"type": "integer", "minimum": 1, "maximum": 5},
        "score_2": {"type": "integer", "minimum": 1, "maximum": 5},
        "ranking": {"type": "integer", "minimum": 1, "maximum": 6},
    },
    "required": ["score_1", "score_2", "ranking"],
    "additionalProperties": False,
}
