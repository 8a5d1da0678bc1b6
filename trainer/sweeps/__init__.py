"""Sweeps (`-m`): what each job ended with (results), the table and report after a sweep, and the
Optuna search that picks the next jobs (search). The checks made before a sweep starts are the
boundary's (trainer/boundary/sweep.py)."""
