"""Helpers for the real-trainer tests (``pytest -m trainers``).

``run_trainers.py`` runs under the trainers virtualenv's python (``scripts/setup_trainers.sh``:
TRL with CPU torch, OpenRLHF's data path); the tests run the CLI under the project's python and
that script on its outputs.
"""
