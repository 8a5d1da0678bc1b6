"""What `trainer generate`, `chat`, `evaluate` and `merge` share: where the model comes from (source.py),
loading it (load.py), prompts in the training format (prompts.py), decoding one completion (decode.py),
a chat's history per format (conversation.py), scoring (score.py)."""
