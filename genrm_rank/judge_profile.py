"""What a judge is like, as a value: its slot-1 bias, dispersion, strength spread and repeats.

Position bias, how much a graded verdict varies, how far apart a prompt's candidates usually
are, and whether a repeat of an ordered pair copies the last verdict are properties of the
judge (a model at a temperature, with a prompt template), not of one prompt. A
:class:`JudgeProfile` holds them, each with its uncertainty, so that every prompt of a run, a
resumed run, a shard, or a single ``select_best`` call ranks with the same model of the judge,
whatever else ran and whenever it finished.

A profile is learnt from verdicts (a run, or a short calibration run), saved as a small JSON
file (:meth:`JudgeProfile.save`), loaded (:meth:`JudgeProfile.load`) and passed to every door:
``select_best``/``rank``/``arank_many`` (``judge_profile=``), the SDG functions, and the CLI
(``--judge-profile FILE``; ``--save-judge-profile FILE`` writes what a run learnt).

Each field is the estimate a posterior uses, and its uncertainty says how much that estimate
counts against a prompt's own evidence:

- ``position_bias``: the judge's slot-1 advantage in log-odds, *fitted* jointly with the
  strengths (a Bradley-Terry home-advantage term; Agresti, *Categorical Data Analysis*,
  sec. 10.6), with its standard error ``position_bias_stderr``;
- ``dispersion``: the quasi-likelihood dispersion ``phi`` of a verdict's preference
  (Wedderburn, Biometrika 61, 1974), on ``dispersion_df`` residual degrees of freedom;
- ``strength_sd``: the prior spread of a prompt's strengths (empirical Bayes; Casella, Am.
  Stat. 39, 1985), on ``strength_df`` degrees of freedom;
- ``repeat_correlation``: the intra-class correlation of two verdicts of one ordered pair
  (1: the judge copies itself), from ``repeat_pairs`` repeats (Kish's design effect).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PROFILE", "PROFILE_FORMAT", "JudgeProfile"]

PROFILE_FORMAT = "genrm_rank.judge_profile/1"
"""The ``format`` field of a saved profile."""


def _number(name: str, value: object, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Field '{name}' must be a number, not {type(value).__name__}.")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"Field '{name}' must be finite and in [{low}, {high}], not {value}.")
    return float(value)


@dataclass(frozen=True)
class JudgeProfile:
    """The judge's slot-1 bias, dispersion, strength spread and repeat correlation.

    Parameters
    ----------
    position_bias : float
        Slot-1 advantage, log-odds (positive: the first response is favoured).
    position_bias_stderr : float
        Its standard error (> 0); the prior on a prompt's bias has this standard deviation.
    dispersion : float
        Quasi-likelihood dispersion ``phi`` of one verdict (> 0).
    dispersion_df : float
        Residual degrees of freedom behind ``dispersion`` (> 0).
    strength_sd : float
        Prior standard deviation of a prompt's strengths, log-odds (> 0).
    strength_df : float
        Degrees of freedom behind ``strength_sd`` (> 0).
    repeat_correlation : float
        Correlation of two verdicts of one ordered pair, in [0, 1].
    repeat_pairs : float
        Repeats behind ``repeat_correlation`` (>= 0).
    verdicts : int
        Usable verdicts the profile was learnt from (0 for the default).
    prompts : int
        Prompts the profile was learnt from.
    """

    position_bias: float = 0.0
    position_bias_stderr: float = 1.0
    dispersion: float = 1.0
    dispersion_df: float = 10.0
    strength_sd: float = 2.0
    strength_df: float = 10.0
    repeat_correlation: float = 0.0
    repeat_pairs: float = 0.0
    verdicts: int = 0
    prompts: int = 0

    def __post_init__(self) -> None:
        _number("position_bias", self.position_bias, low=-math.inf)
        for name in ("position_bias_stderr", "dispersion", "dispersion_df"):
            if _number(name, getattr(self, name), low=0.0) == 0.0:
                raise ValueError(f"Field '{name}' must be > 0, not 0.")
        for name in ("strength_sd", "strength_df"):
            if _number(name, getattr(self, name), low=0.0) == 0.0:
                raise ValueError(f"Field '{name}' must be > 0, not 0.")
        _number("repeat_correlation", self.repeat_correlation, low=0.0, high=1.0)
        _number("repeat_pairs", self.repeat_pairs, low=0.0)
        for name in ("verdicts", "prompts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Field '{name}' must be an int >= 0, not {value!r}.")

    # -- storage -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the ``format`` tag.

        >>> JudgeProfile.from_dict(DEFAULT_PROFILE.to_dict()) == DEFAULT_PROFILE
        True
        """
        return {"format": PROFILE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: object) -> JudgeProfile:
        """The profile :meth:`to_dict` wrote; unknown or missing fields are errors."""
        if not isinstance(data, dict):
            raise TypeError(f"A judge profile must be a JSON object, not {type(data).__name__}.")
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(
                f'A judge profile must have "format": {PROFILE_FORMAT!r}, '
                f"not {data.get('format')!r}."
            )
        names = {f.name for f in fields(cls)}
        given = set(data) - {"format"}
        if given - names:
            raise ValueError(f"Unknown judge-profile fields: {sorted(given - names)}.")
        if names - given:
            raise ValueError(f"Missing judge-profile fields: {sorted(names - given)}.")
        return cls(**{name: data[name] for name in names})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON to ``path``, atomically (a temporary file, then a rename)."""
        target = Path(path)
        fd, temp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=2)
                handle.write("\n")
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JudgeProfile:
        """Read a profile :meth:`save` wrote; a bad file raises ``ValueError`` naming it."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{os.fspath(path)} is not a judge profile: {error}") from error


DEFAULT_PROFILE = JudgeProfile()
"""What is assumed of a judge before anything is learnt: no bias (prior SD 1 log-odds),
Bernoulli dispersion and a strength spread of 2, each counted as 10 degrees of freedom, and
independent repeats."""
