"""Analysis of a finished (or running) study directory: tables, figures and one HTML report.

Everything here only reads files (`study.json`, `tasks.json`, each trial's `params.json` and
`result.json`, and `optuna.db`; their names are `names.py`'s); nothing imports torch, Ray or
`trainables`.

    results     load a study directory into pandas DataFrames (`load_study`)
    status      why each trial stopped (`stop_reason`), whether the study runs now
    optuna_link read optuna.db and link its trials to the trial folders (`ray_trial_id`)
    baseline    which trial of each space is its baseline (`is_baseline`)
    table       the single- vs multi-task comparison table (text, Markdown, CSV)
    confusion   confusion matrices of the best trials
    figures     extract (plain data) + render (plotly figure) pairs, in Optuna's style
    report      one self-contained HTML report: the list `SECTIONS`
                (`python -m analysis.report <study dir>`)
"""

from analysis.results import AnalysisError, Study, load_study

__all__ = ["AnalysisError", "Study", "load_study"]
