"""Recall studies: synthetic in-context recall tasks (MQAR, copy) trained through the same sweep path as
language models, their evaluation, and the analysis behind ``ceiling recall``.

- ``generators``: MQAR and copy sequences from a seed (targets masked with -100 outside the answers);
- ``spec``: the sweep file's ``task:`` block;
- ``planning``: architecture x width x lr x seed trials;
- ``tasks``: what the training loop trains on and evaluates (``RecallTask``);
- ``evaluation``: accuracy and loss at the scored positions;
- ``analysis``: best lr per width, accuracy vs width and state size, the 90% table (``ceiling recall``,
  orchestrator/cli/recall.py, prints it).

orchestrator/kinds/recall.py registers the recall study as a kind of study.

Importing this package is light (no torch).
"""
