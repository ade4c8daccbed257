"""The paper's experiments on the simulated SO-101 as cached stages (`lerobot-stamo-paper`, `make paper`).

`pipeline` runs the stages (record -> train stamo -> reconstruct -> interpolate -> label -> probe -> train and
evaluate policies -> cost) with the project's and LeRobot's own commands; `report` writes
`docs/results/` (report.md, PNG plots, results.json) from their results.
"""

from .pipeline import ARMS, PaperConfig, StageRunner, run_paper
from .report import write_report

__all__ = ["ARMS", "PaperConfig", "StageRunner", "run_paper", "write_report"]
