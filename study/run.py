"""`python -m study.run`: start or resume a hyperparameter study.

    python -m study.run --quick                      # a few minutes, synthetic data, CPU
    python -m study.run --space multi --data real    # the real study
    python -m study.run --resume studies/multi-...   # continue an interrupted study

User errors end with exit status 2 and one line on stderr, before Ray starts or files are written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from study.settings import (
    build_parser,
    check_resumable,
    describe_spaces,
    settings_from_args,
)
from trainables.errors import UserError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_spaces:
        print(describe_spaces())
        return 0
    try:
        return _run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from study import runner  # imports torch; kept out of --list-spaces and --help

    if args.resume:
        settings = check_resumable(Path(args.resume))
    else:
        settings = settings_from_args(args)
    data = runner.prepare_data(settings)  # decode + validate every task before Ray starts
    folder = settings.study_dir if args.resume else runner.create_study_dir(settings, data)
    if args.resume:
        runner.check_experiments(settings)
    with runner.locked(folder):
        runner.init_ray(settings, args.address, args.num_cpus, args.num_gpus, args.dashboard)
        try:
            summaries = runner.run_study(settings, data)
        except runner.StudyInterrupted:
            return 130  # interrupted but resumable; the resume command was printed
    print("\n".join(summaries))
    print(f"\nstudy directory: {folder}")
    print(f"report:  python -m analysis.report {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
