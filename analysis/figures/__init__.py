"""The report's figures, one module per figure family, each an extract and a render step.

Modelled on `optuna.visualization`: `*_data(study)` (the extract) is pure, it returns a DataFrame
(or a small dataclass) computed from a loaded `Study`, which the tests check against the raw
files; `plot_*(data)` (the render) turns that into a plotly figure and computes nothing of
substance. An extract that finds nothing to show returns an empty frame; the report then says
what is missing instead of drawing an empty figure.

    curves       learning curves of each task's top trials
    history      optimization history per space
    importances  hyperparameter importances (Optuna's evaluator)
    lr_scheme    learning rate x sampling scheme, per trial
    schemes      sampling schemes compared: each scheme's best trial
    pareto       the multi-task Pareto front (`pareto_front`)
    parallel     parallel coordinates of the multi-task space
    seeds        test accuracy per seed (the comparison table's numbers)
    confusion    confusion matrices (the extract is `analysis.confusion`)
    trials       the trials table and stop reasons counted
    methods      the compared methods' Pareto front, curves and weights (--compare-methods)
    _common      the palette, trial colours and helpers the families share

Everything the report and the tests use is importable from here (`from analysis import figures
as F; F.plot_history(F.history_data(study))`).
"""

from analysis.figures._common import BASELINE_LABEL, PALETTE, trial_colors, trial_key
from analysis.figures.confusion import plot_confusion
from analysis.figures.curves import learning_curves_data, plot_learning_curves
from analysis.figures.history import history_data, plot_history
from analysis.figures.importances import (
    MIN_IMPORTANCE_TRIALS,
    Importances,
    importance_data,
    plot_importances,
)
from analysis.figures.lr_scheme import lr_scheme_data, plot_lr_scheme
from analysis.figures.methods import (
    MethodPareto,
    method_colors,
    method_curves_data,
    method_pareto_data,
    method_weights_data,
    plot_method_curves,
    plot_method_pareto,
    plot_method_weights,
)
from analysis.figures.parallel import LOG_COLUMN, parallel_data, plot_parallel
from analysis.figures.pareto import (
    Pareto,
    pareto_data,
    pareto_figure_data,
    pareto_front,
    plot_pareto,
    single_task_references,
)
from analysis.figures.schemes import plot_schemes, scheme_data
from analysis.figures.seeds import plot_seed_accuracy, seed_accuracy_data, seed_accuracy_rows
from analysis.figures.trials import stop_reason_counts, trial_table_colors, trial_table_data

__all__ = [
    "BASELINE_LABEL",
    "MIN_IMPORTANCE_TRIALS",
    "PALETTE",
    "LOG_COLUMN",
    "Importances",
    "MethodPareto",
    "Pareto",
    "history_data",
    "importance_data",
    "learning_curves_data",
    "lr_scheme_data",
    "method_colors",
    "method_curves_data",
    "method_pareto_data",
    "method_weights_data",
    "parallel_data",
    "pareto_data",
    "pareto_figure_data",
    "pareto_front",
    "plot_confusion",
    "plot_history",
    "plot_importances",
    "plot_learning_curves",
    "plot_lr_scheme",
    "plot_method_curves",
    "plot_method_pareto",
    "plot_method_weights",
    "plot_parallel",
    "plot_pareto",
    "plot_schemes",
    "plot_seed_accuracy",
    "scheme_data",
    "seed_accuracy_data",
    "seed_accuracy_rows",
    "single_task_references",
    "stop_reason_counts",
    "trial_colors",
    "trial_key",
    "trial_table_colors",
    "trial_table_data",
]
