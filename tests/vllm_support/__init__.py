"""Helpers for the real-vLLM tests (``pytest -m vllm``): a tiny model builder and a launcher.

``tiny_model.py`` runs under the vLLM virtualenv's python (it needs torch and transformers);
``server.py`` runs under the project's python and starts vLLM from that virtualenv.
"""
