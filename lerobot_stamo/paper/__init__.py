"""The paper's experiments on the simulated SO-101 as cached stages (`lerobot-stamo-paper`, `make paper`).

`config` holds a run's settings, `stages` what each stage does (record -> train stamo -> reconstruct ->
interpolate -> label -> probe -> train and evaluate policies -> cost, with the project's and LeRobot's own
commands), `runner` how stages run and are cached, `pipeline` the order and publishing of a run; `report` writes
`docs/results/` (report.md, PNG plots, results.json) from their results.
"""

from .config import ARMS, PaperConfig
from .pipeline import run_paper
from .report import write_report
from .runner import StageRunner

__all__ = ["ARMS", "PaperConfig", "StageRunner", "run_paper", "write_report"]
