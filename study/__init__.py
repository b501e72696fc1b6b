"""How a study runs: the command line, its settings, and the Ray Tune experiments."""
