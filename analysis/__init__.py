"""Analysis of a finished (or running) study directory: tables, figures and one HTML report.

Everything here only reads files (`study.json`, `tasks.json`, `confirmation.json`, each trial's
and confirmation run's `params.json` and `result.json`, and `optuna.db`; their names are
`names.py`'s); nothing imports torch, Ray or `trainables`, except `models`, which loads a trained
model and imports torch inside its functions only.

    results      load a study directory into pandas DataFrames (`load_study`)
    files        reading a trial folder's files (result rows, flattened configs)
    confirmation the confirmation runs (`confirm-<space>/`): one row per run (`Study.runs`)
    status       why each trial stopped (`stop_reason`), whether the study runs now
    optuna_link  read optuna.db and link its trials to the trial folders (`ray_trial_id`)
    baseline     which trial of each space is its baseline (`is_baseline`)
    stats        mean with its 95 % t-interval; paired t (Welch's where seeds differ), Holm, MDE
    table        the comparison table: test accuracy over seeds (text, Markdown, CSV, HTML)
    search_table its search-stage section: best validation figures (optimistic)
    verdict      the answer, worded by the Holm-adjusted tests (report card, study.run's end)
    confusion    confusion matrices: test (confirmation runs), validation (best trials)
    figures      one module per figure family (`figures.methods`: the compared methods'), each
                 an extract (plain data) + render (plotly figure) pair, in Optuna's style
    report       one self-contained HTML report: the list `SECTIONS`
                 (`python -m analysis.report <study dir>`)
    models       the trained model of a table row (`load_model`; needs torch)
"""

from analysis.results import Study, load_study
from errors import AnalysisError

__all__ = ["AnalysisError", "Study", "load_study"]
