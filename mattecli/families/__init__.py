"""Model families, one sub-package each (``dim``, ``shm``, ``bgm``, ``click``).

Each ``families/<name>/`` holds ``model.py`` (the networks, one class per part as the paper
names it), ``losses.py`` (what only this family uses), ``data.py`` (how a training sample
is made) and ``family.py`` (stages, recipe keys, guidance kind, registration). The registry
(:mod:`mattecli.families.registry`) finds them by folder; see ``docs/families.md``.
"""
