"""Analysis of a finished (or running) study directory: tables, figures and one HTML report.

Everything here only reads files (`study.json`, `tasks.json`, each trial's `params.json` and
`result.json`, and `optuna.db`); nothing imports torch, Ray or `trainables`.

    results   load a study directory into pandas DataFrames (`load_study`)
    table     the single- vs multi-task comparison table (text, Markdown, CSV)
    confusion confusion matrices of the best trials
    figures   extract (plain data) + render (plotly figure) pairs, in Optuna's style
    report    one self-contained HTML report (`python -m analysis.report <study dir>`)
"""

from analysis.results import AnalysisError, Study, load_study

__all__ = ["AnalysisError", "Study", "load_study"]
