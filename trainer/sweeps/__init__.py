"""Sweeps (`-m`): what each job ended with and the table printed when a sweep ends (results), the report
of a sweep folder (report: charts, study_plots for Optuna's charts, page for report.html), and the Optuna
search that picks the next jobs (search). The checks made before a sweep starts are the boundary's
(trainer/boundary/sweep.py)."""
