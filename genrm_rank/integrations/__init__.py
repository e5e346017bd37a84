"""Drivers of the one runner from engines users already run (:mod:`~genrm_rank.integrations.ray`:
Ray Data); nothing here is imported by ``import genrm_rank``."""

__all__: list[str] = []
