"""What `trainer generate`, `trainer evaluate` and `trainer merge` share: where the model comes from
(source.py), loading it (load.py), prompts in the training format (prompts.py), scoring (score.py)."""
