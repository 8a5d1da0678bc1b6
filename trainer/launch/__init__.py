"""Where a run goes besides this process: Slurm (slurm.py: the sbatch script, sbatch, scontrol, scancel).

Imports trainer.config and the standard library only, so `trainer submit`, `status` and `cancel` answer
without loading torch; the training side (trainer/training/signals.py) calls `requeue` from here.
"""
