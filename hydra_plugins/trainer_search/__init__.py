"""Hydra discovers sweepers under the `hydra_plugins` namespace package: this one runs trainer's
Optuna search (trainer/sweeps/search.py)."""
