"""Console scripts read their default presets from the package (`lerobot_stamo/configs`), not from `configs/` in
the working directory: a pip-installed plug-in runs them from any folder."""

import re
import subprocess
from pathlib import Path

import pytest
from cli_helpers import cli

import lerobot_stamo
from lerobot_stamo.paths import PRESETS_DIR, preset
from lerobot_stamo.scripts.lerobot_stamo_demo import DemoConfig
from lerobot_stamo.scripts.lerobot_stamo_paper import parse_args

PACKAGE = Path(lerobot_stamo.__file__).resolve().parent


def test_presets_live_in_the_package():
    assert PRESETS_DIR == PACKAGE / "configs"
    for name in ("stamo_tiny.json", "stamo_vla_compact_sim.json", "stamo_vla_cotrain_sim.json"):
        assert preset(name).is_file(), name


def test_no_default_reads_configs_from_the_working_directory():
    """No default of the package names a path under `configs/` relative to where a command runs."""
    pattern = re.compile(r"""Path\(\s*["']configs""")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_paper_and_demo_defaults_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    cfg = parse_args(["--quick"])
    assert Path(cfg.configs_dir) == PRESETS_DIR
    demo = DemoConfig(output_dir=tmp_path / "demo")  # checks its presets exist
    assert demo.tiny_config == preset("stamo_tiny.json") and demo.vla_config.is_file()


@pytest.mark.slow
def test_paper_console_script_from_another_folder(tmp_path):
    """The installed console script, run where there is no configs/, gets past its preset checks: it stops at
    `--report_only` finding no finished stage, not at a missing preset."""
    proc = subprocess.run(
        [cli("lerobot-stamo-paper"), "--quick", "--report_only", "--work_dir", str(tmp_path / "work")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "lacks stamo_tiny.json" not in proc.stderr and "configs" not in proc.stderr.splitlines()[-1], (
        proc.stderr
    )
    assert proc.returncode != 0 or "No report written" in proc.stdout, proc.stderr[-2000:]
