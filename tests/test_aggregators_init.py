"""Tests for the public surface of genrm_rank.aggregators."""

from __future__ import annotations

import inspect

import genrm_rank.aggregators as aggregators


def test_all_is_sorted_and_unique() -> None:
    assert aggregators.__all__ == sorted(set(aggregators.__all__))


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(aggregators).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "").startswith("genrm_rank.aggregators")
    }
    assert public == set(aggregators.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for name in aggregators.__all__:
        assert inspect.getdoc(getattr(aggregators, name)), name
