"""Drivers of the one runner from engines that users already run.

- :mod:`~genrm_rank.integrations.ray`: Ray Data (the ``ray`` extra), one runner per actor.

Nothing here is imported by ``import genrm_rank``: each module imports its engine itself.
"""

__all__: list[str] = []
