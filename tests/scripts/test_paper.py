"""`lerobot-stamo-paper` (what `make paper` runs): the `--quick` pipeline at tiny settings writes every artifact."""

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from cli_helpers import cli, run_cli

from lerobot_stamo.errors import StamoInputError
from lerobot_stamo.paper.config import ARMS
from lerobot_stamo.paper.ledger import ledger_dir, publish, read_partial, read_published, tree_digest
from lerobot_stamo.paper.pipeline import (
    PIPELINE_STAGES,
    PREFIX_STAGES,
    adoptable_arms,
    check_inputs,
    check_settings,
    lock_work_dir,
    partial_publisher,
    run_paper,
    settings_of,
    stage_count,
)
from lerobot_stamo.paper.report import (
    _act_flags,
    _cell,
    _code_line,
    _scope,
    _stats,
    _time_lines,
    claim_lines,
    markdown,
    time_spent,
)
from lerobot_stamo.scripts.lerobot_stamo_paper import parse_args, reproduce_command

REPO = Path(__file__).resolve().parents[2]
TINY = ["--quick", "--tasks", "PickCube", "--episodes", "3", "--video_episodes", "1", "--real_episodes", "1",
        "--image_size", "32", "--fit_vae_steps", "0", "--stamo_steps", "2", "--policy_steps", "2",
        "--eval_episodes", "1", "--probe_steps", "5", "--cost_reps", "2", "--probe_horizons", "1,2",
        "--configs_dir", str(REPO / "configs")]  # fmt: skip
ARTIFACTS = (
    "report.md",
    "results.json",
    "probe_mse.png",
    "success.png",
    "reconstructions.png",
    "interpolation.png",
)


def numbers(value) -> list[float]:
    """Every number in a JSON value (booleans excluded)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    return []


@pytest.mark.slow
@pytest.mark.longest(minutes=7)  # on the 2-core CI machine
@pytest.mark.timeout(
    2400
)  # its three pipeline runs allow 1800 s each: a loaded machine doubles the 8 minutes
def test_quick_pipeline_writes_every_artifact_and_resumes(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    args = [cli("lerobot-stamo-paper"), *TINY, "--work_dir", str(work), "--results_dir", str(results)]
    proc = run_cli(args, cwd=tmp_path, timeout=1800)  # ~14 CLI launches: minutes on a busy 2-core machine
    for name in ARTIFACTS:
        path = results / name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    payload = json.loads((results / "results.json").read_text())
    summary = payload["summary"]["PickCube"]
    figures = numbers(payload["summary"]) + numbers(payload["cost"])
    assert figures and all(math.isfinite(x) for x in figures)
    assert set(summary["success"]) == {*ARMS, "real50"}
    assert {"stamo", "backbone", "pixels", "goal_conditioned", "mean_baseline"} <= set(summary["probe"])
    assert payload["config"]["seeds"] == [0] and payload["environment"]["packages"]["lerobot"]
    (version,) = payload["code"]  # every stage ran with the same code, and said which
    assert version.startswith(payload["environment"]["packages"]["lerobot-policy-stamo"])
    assert any(c.startswith("lerobot-train") for cmds in payload["commands"].values() for c in cmds)
    report = (results / "report.md").read_text()
    assert "| `cotrain`: real + StaMo-labelled video |" in report and "84.6" in report
    assert "ACT with `--policy.chunk_size=20` `--policy.optimizer_lr=1e-4`" in report  # as it ran
    stages = sorted(p.name for p in (work / "stages").glob("*.json"))
    assert len(stages) == stage_count(parse_args(TINY)), stages
    assert "[20/20] cost" in proc.stderr + proc.stdout

    # The finished pipeline is published beside the report, paths relative to where the command ran; while it
    # ran, it was published in part as its arms finished.
    published = results / "runs" / "PickCube_s0"
    assert re.search(r"PickCube_s0: \d+ of its 19 stages published in part", proc.stdout + proc.stderr)
    run = json.loads((published / "run.json").read_text())
    assert run["stages"] == list(PIPELINE_STAGES) and run["complete"] and len(run["inputs"]) == 4
    assert {p.name for p in published.glob("*.png")} == {"reconstructions.png", "interpolation.png"}
    assert str(tmp_path) not in "".join(p.read_text() for p in published.glob("*.json"))
    assert (results / "runs" / "cost.json").is_file()

    # --report_only into another results folder reads every stage back from the work folder (nothing may run)
    # and publishes the pipeline there; the report is the same.
    before = json.loads((results / "results.json").read_text())
    other = tmp_path / "results_again"
    proc = run_cli([*args[:-1], str(other), "--report_only"], cwd=tmp_path)
    assert (proc.stderr + proc.stdout).count("(cached)") == len(stages)
    assert json.loads((other / "results.json").read_text())["summary"] == before["summary"]
    assert (other / "runs" / "PickCube_s0" / "run.json").is_file()

    # On a machine without the work folder, the published pipeline is read back: nothing runs, same report.
    elsewhere = tmp_path / "fresh_machine_work"
    proc = run_cli([*args[:-3], str(elsewhere), "--results_dir", str(results)], cwd=tmp_path)
    out = proc.stderr + proc.stdout
    assert (
        "PickCube_s0: published" in out
        and "(cached)" not in out
        and not list((elsewhere / "stages").glob("*.json"))
    )
    after = json.loads((results / "results.json").read_text())
    assert after["summary"] == before["summary"] and after["pipelines"] == {"PickCube": [0]}
    assert "lerobot-stamo-paper --tasks PickCube --seeds 0 --quick" in (results / "report.md").read_text()

    # A pipeline cut short (here: before its last arm) is published in part by --report_only, with the digests
    # of what its arms trained on. A machine without the work folder makes the stages before the arms again,
    # finds the same bytes, takes the published arms and runs only the missing one.
    cut = [work / "stages" / f"PickCube_s0_{name}.json" for name in ("train_cotrain", "eval_cotrain")]
    kept = [path.read_bytes() for path in cut]
    for path in cut:
        path.unlink()
    shutil.rmtree(published)
    proc = run_cli([*args, "--report_only"], cwd=tmp_path)
    assert "No report written: no pipeline has finished all its stages yet (PickCube_s0" in proc.stdout
    run = json.loads((published / "run.json").read_text())
    assert run["complete"] is False and run["stages"] == list(PIPELINE_STAGES[:-2])
    assert set(run["inputs"]) == {"robot", "robot_labelled", "cotrain", "stamo"}
    second = tmp_path / "second_machine_work"
    proc = run_cli([*args[:-3], str(second), "--results_dir", str(results)], cwd=tmp_path)
    out = proc.stderr + proc.stdout
    assert "PickCube_s0: 5 of its 6 arms published in part" in out and out.count("(published)") == 10
    ran = {p.stem.removeprefix("PickCube_s0_") for p in (second / "stages").glob("PickCube_s0_*.json")}
    assert ran == {*PREFIX_STAGES, "train_cotrain", "eval_cotrain"}
    run = json.loads((published / "run.json").read_text())
    assert run["complete"] is True and run["stages"] == list(PIPELINE_STAGES)
    assert json.loads((results / "results.json").read_text())["pipelines"] == {"PickCube": [0]}
    for path, data in zip(cut, kept, strict=True):
        path.write_bytes(data)  # the first machine's cache as it was

    # Trainings cut short resume from their last checkpoint (LeRobot's --resume) and keep only the last one;
    # the stamo's pretrained parts are not made again.
    parts = work / "PickCube_s0" / "stamo_pretrained" / "parts.json"
    parts_written = parts.stat().st_mtime_ns
    for train, stage_names in (("train_none", ("train_none", "eval_none")), ("train_stamo", ("stamo",))):
        checkpoints = work / "PickCube_s0" / train / "checkpoints"
        assert sorted(p.name for p in checkpoints.iterdir()) == ["000002", "last"]  # saved at 1 and 2, pruned
        saved = checkpoints / "last" / "pretrained_model" / "train_config.json"
        saved.write_text(saved.read_text().replace('"steps": 2,', '"steps": 3,'))  # as if stopped at 2 of 3
        for name in stage_names:
            (work / "stages" / f"PickCube_s0_{name}.json").unlink()
    shutil.rmtree(published)  # to run a published pipeline again
    proc = run_cli(args, cwd=tmp_path)
    assert (proc.stderr + proc.stdout).count("(cached)") == len(PIPELINE_STAGES) - 3  # the cost is published
    for train, stage_name in (("train_none", "train_none"), ("train_stamo", "stamo")):
        saved = (
            work / "PickCube_s0" / train / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
        )
        resumed = json.loads((work / "stages" / f"PickCube_s0_{stage_name}.json").read_text())
        assert resumed["commands"][-1] == f"lerobot-train --config_path={saved} --resume=true"
        assert "Resuming data order" in (work / "logs" / f"PickCube_s0_{stage_name}.log").read_text()
        assert sorted(p.name for p in saved.parents[2].iterdir()) == ["000003", "last"]
    assert parts.stat().st_mtime_ns == parts_written


def test_quick_defaults_never_touch_the_full_run():
    quick, full = parse_args(["--quick"]), parse_args([])
    assert (quick.work_dir, quick.results_dir) == (
        Path("outputs/paper_quick"),
        Path("outputs/paper_quick/results"),
    )
    assert (full.work_dir, full.results_dir) == (Path("outputs/paper"), Path("docs/results"))


def test_a_cache_made_with_other_settings_is_refused(tmp_path):
    check_settings(parse_args([*TINY, "--work_dir", str(tmp_path)]), tmp_path)
    seeds_differ = parse_args([*TINY, "--seeds", "1", "--work_dir", str(tmp_path)])
    check_settings(seeds_differ, tmp_path)  # another seed of the same run: accepted
    with pytest.raises(StamoInputError, match=r"--policy_steps=3 \(was: 2\).*or another --work_dir"):
        check_settings(parse_args([*TINY, "--policy_steps", "3"]), tmp_path)


def test_bad_arguments_name_the_flag_and_the_fix(tmp_path):
    with pytest.raises(StamoInputError, match="--tasks=Nope is not valid: choose from"):
        parse_args(["--tasks", "Nope", "--configs_dir", str(REPO / "configs")])
    with pytest.raises(
        StamoInputError, match="--real_episodes=9 must be between 1 and the training episodes"
    ):
        parse_args(["--quick", "--real_episodes", "9", "--configs_dir", str(REPO / "configs")])
    with pytest.raises(StamoInputError, match="lacks stamo_tiny.json: pass a folder holding the presets"):
        parse_args(["--quick", "--configs_dir", str(tmp_path)])


def test_a_partial_run_says_so_before_any_figure():
    full = {"quick": False}
    assert "1 of its 6 task-and-seed pipelines (PickCube seed 0) - one seed per task: no ± yet" in _scope(
        full, {"PickCube": [0]}
    )
    assert "4 of its 6 task-and-seed pipelines (PickCube seeds 0, 1, 2; PickPlace seed 0)." in _scope(
        full, {"PickCube": [0, 1, 2], "PickPlace": [0]}
    )
    assert _scope(full, {"PickCube": [0, 1, 2], "PickPlace": [0, 1, 2]}) == ""
    assert "smoke run" in _scope({"quick": True}, {"PickCube": [0]})


def test_the_reproduce_command_names_every_reported_pipeline():
    runs = {"PickCube": {"0": {}, "1": {}, "2": {}}, "PickPlace": {"0": {}}}
    assert reproduce_command(["--tasks=PickPlace", "--seeds", "0", "--report_only", "--jobs", "1"], runs) == (
        "lerobot-stamo-paper --tasks PickCube --seeds 0,1,2 --jobs 1 && "
        "lerobot-stamo-paper --tasks PickPlace --seeds 0 --jobs 1"
    )
    assert reproduce_command([], {"A": {"1": {}, "0": {}}, "B": {"0": {}, "1": {}}}) == (
        "lerobot-stamo-paper --tasks A,B --seeds 0,1"
    )


def _finished_stages(tmp_path: Path) -> dict[str, dict]:
    (tmp_path / "recon.png").write_bytes(b"png")
    (tmp_path / "strip.png").write_bytes(b"strip")
    stages = {name: {"commands": [f"run {tmp_path}/x"]} for name in PIPELINE_STAGES}
    stages["reconstruction"]["png"] = str(tmp_path / "recon.png")
    stages["interpolation"]["files"] = [str(tmp_path / "strip.gif"), str(tmp_path / "strip.png")]
    return stages


def test_a_published_pipeline_reads_back_with_its_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ledger, settings = ledger_dir(tmp_path / "results"), settings_of(parse_args(TINY))
    (ledger / ".PickCube_s0.tmp").mkdir(parents=True)  # left by an interrupted publish
    out = publish(ledger, "PickCube", 0, settings, _finished_stages(tmp_path))
    assert not (ledger / ".PickCube_s0.tmp").exists()
    assert json.loads((out / "train_none.json").read_text())["commands"] == ["run x"]  # relative to the cwd
    (back,) = read_published(ledger, settings).values()
    assert Path(back["reconstruction"]["png"]).read_bytes() == b"png"
    assert [Path(f).read_bytes() for f in back["interpolation"]["files"]] == [b"strip"]
    assert publish(ledger, "PickCube", 0, settings, {}) == out  # published already: kept as it is
    with pytest.raises(StamoInputError, match=r"published with other settings: --policy_steps=3 \(was: 2\)"):
        read_published(ledger, settings_of(parse_args([*TINY, "--policy_steps", "3"])))
    (ledger / "PickCube_s1").mkdir()
    with pytest.raises(
        StamoInputError, match="holds no run.json: it is not a pipeline this command published"
    ):
        publish(ledger, "PickCube", 1, settings, _finished_stages(tmp_path))


def test_a_pipeline_published_in_part_is_replaced_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ledger, settings = ledger_dir(tmp_path / "results"), settings_of(parse_args(TINY))
    stages = _finished_stages(tmp_path)
    prefix_and_act = {n: stages[n] for n in (*PREFIX_STAGES, "train_act", "eval_act", "train_none")}
    publish(ledger, "PickCube", 0, settings, prefix_and_act, {"robot": "a"}, complete=False)
    assert read_published(ledger, settings) == {}  # left out of the report
    ((run, back),) = read_partial(ledger, settings).values()
    assert run["inputs"] == {"robot": "a"} and adoptable_arms(back, cost_known=True) == ["act"]
    both = {n: stages[n] for n in (*prefix_and_act, "eval_none", "train_state", "eval_state")}
    assert adoptable_arms(both, cost_known=False) == ["act"]  # the cost times none's and state's checkpoints
    out = publish(ledger, "PickCube", 0, settings, stages, {"robot": "a"})  # the part is replaced
    assert json.loads((out / "run.json").read_text())["complete"] and not read_partial(ledger, settings)
    assert not list(ledger.glob(".PickCube_s0.*"))

    check_inputs(out, {"robot": "a"}, {"robot": "a", "stamo": "b"})  # only what both have is compared
    with pytest.raises(
        StamoInputError, match=r"The robot made again here differ .*Delete .*PickCube_s0 to run"
    ):
        check_inputs(out, {"robot": "a"}, {"robot": "c"})


def test_a_running_pipeline_publishes_itself_in_part_as_its_arms_finish(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    work, ledger, settings = (
        tmp_path / "work",
        ledger_dir(tmp_path / "results"),
        settings_of(parse_args(TINY)),
    )
    for folder in ("robot", "labelled", "cotrain", "stamo"):
        (work / "data" / folder).mkdir(parents=True)
        (work / "data" / folder / ("model.safetensors" if folder == "stamo" else "frames.bin")).write_bytes(
            b"x"
        )
    stages = _finished_stages(tmp_path)
    stages["record"]["robot"] = {"root": str(work / "data" / "robot")}
    stages["label"]["robot"] = {"root": str(work / "data" / "labelled")}
    stages["cotrain_data"]["root"] = str(work / "data" / "cotrain")
    stages["stamo"]["checkpoint"] = str(work / "data" / "stamo")
    progress = partial_publisher(ledger, work, settings, "PickCube", 0, None)

    def finish(*names: str) -> dict | None:
        for name in names:
            (work / "stages" / f"PickCube_s0_{name}.json").write_text(json.dumps(stages[name]))
        progress()
        run = ledger / "PickCube_s0" / "run.json"
        return json.loads(run.read_text()) if run.is_file() else None

    (work / "stages").mkdir()
    # ACT trains beside the stamo stages: nothing is published before the stages the arms train on
    assert finish("record", "train_act", "eval_act") is None and not ledger.exists()
    run = finish(*PREFIX_STAGES)
    assert run["complete"] is False and run["stages"] == [*PREFIX_STAGES, "train_act", "eval_act"]
    assert set(run["inputs"]) == {"robot", "robot_labelled", "cotrain", "stamo"}
    assert "PickCube_s0: 9 of its 19 stages published in part" in capsys.readouterr().out
    run_json = ledger / "PickCube_s0" / "run.json"
    written = run_json.stat().st_mtime_ns
    run = finish("train_none")  # a training in flight is not published: nothing is written, nothing printed
    assert run["stages"] == [*PREFIX_STAGES, "train_act", "eval_act"]
    assert run_json.stat().st_mtime_ns == written and capsys.readouterr().out == ""
    run = finish("eval_none")
    assert run["stages"] == [*PREFIX_STAGES, "train_none", "eval_none", "train_act", "eval_act"]
    capsys.readouterr()
    written = run_json.stat().st_mtime_ns
    # a run resumed from this part publishes again only once another arm has finished
    part = read_partial(ledger, settings)[("PickCube", 0)]
    partial_publisher(ledger, work, settings, "PickCube", 0, part)()
    assert run_json.stat().st_mtime_ns == written and capsys.readouterr().out == ""
    run = finish(*PIPELINE_STAGES)
    assert (
        run["complete"] is True
        and run["stages"] == list(PIPELINE_STAGES)
        and read_published(ledger, settings)
    )


def test_a_digest_holds_the_bytes_and_names_not_the_folder(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder / "meta").mkdir(parents=True)
        (tmp_path / folder / "data.bin").write_bytes(b"frames")
        (tmp_path / folder / "meta" / "stamo_labels.json").write_text(f'{{"path": "{tmp_path / folder}"}}')
    skip = ("meta/stamo_*.json",)
    assert tree_digest(tmp_path / "a", skip) == tree_digest(tmp_path / "b", skip)
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "b")  # the provenance differs
    (tmp_path / "b" / "data.bin").write_bytes(b"frameS")
    assert tree_digest(tmp_path / "a", skip) != tree_digest(tmp_path / "b", skip)
    with pytest.raises(FileNotFoundError):
        tree_digest(tmp_path / "gone")


def test_claims_compare_arms_against_the_evaluation_noise():
    def task(state, none, cotrain, real10):
        rates = {"state": state, "none": none, "motion": none, "cotrain": cotrain, "real10": real10}
        return {"eval_episodes": 50, "success": {arm: _stats(v) for arm, v in rates.items()}}

    lines = claim_lines({"A": task([0.9, 0.8], [0.5, 0.6], [0.3, 0.3], [0.3, 0.3])})
    assert (
        lines[0].startswith("- world model `state` over `none`")
        and "A +30 ± 12 points (100 episodes each): a gain" in lines[0]
    )
    assert "A +0 ± 14 points (100 episodes each): no significant difference" in lines[1]
    assert "A +0 ± 13 points (100 episodes each): no significant difference" in lines[2]
    assert _stats([0.5, 0.7])["std"] == pytest.approx(0.1414, abs=1e-4)  # sample std over seeds
    assert _cell(_stats([0.66, 0.06]), "{:.0f}", 100, per_seed=True) == "36 ± 42 (66, 6)"
    assert _cell(_stats([0.66]), "{:.0f}", 100, per_seed=True) == "66"
    act = "lerobot-train --policy.type=act --policy.chunk_size=8 --policy.optimizer_lr=3e-5 --steps=9"
    assert _act_flags({"T_s0_record": ["x"], "T_s0_train_act": [act]}) == (
        "`--policy.chunk_size=8` `--policy.optimizer_lr=3e-5`"
    )


def test_the_report_says_where_the_time_goes():
    runs = {"A": {"0": {"record": {"wall_s": 600}, "train_act": {"wall_s": 5400}},
                  "1": {"record": {"wall_s": 300}, "train_act": {"wall_s": 3600}}},
            "B": {"0": {"record": {"recovered": "..."}}}}  # fmt: skip
    spent = time_spent({"runs": runs})
    assert spent == {"median_s": {"record": 450, "train_act": 4500}, "total_s": {"A_s0": 6000, "A_s1": 3900}}
    lines = _time_lines(spent, jobs=2)
    assert lines[2] == "| `train_act` | 75.0 | 91% |" and lines[3] == "| `record` | 7.5 | 9% |"
    assert "A_s0 1.7 h, A_s1 1.1 h" in lines[6] and "Stages run 2 at a time" in lines[6]
    assert "Not recorded" in _time_lines(time_spent({"runs": {"B": runs["B"]}}), jobs=2)[0]


def test_another_reports_headline_figures_are_set_beside_these(tmp_path):
    """`--compare_with <results.json>` (the random-encoder report beside the pretrained one): its StaMo probe
    rows, its success per arm as columns and its claims, under its label; a file that is not one is refused
    before any stage runs."""
    published = REPO / "docs" / "results" / "results.json"
    cfg = parse_args([*TINY, "--compare_with", str(published), "--compare_label", "random encoder"])
    compare = cfg.compared()
    payload = json.loads(published.read_text()) | {"time_spent": time_spent({"runs": {}})}
    payload["compare"] = compare
    report = markdown(payload)
    stamo = compare["summary"]["PickCube"]["probe"]["stamo"]["linear"]["1"]["mean"]
    rows = [ln for ln in report.splitlines() if ln.startswith("| StaMo, random encoder report (linear)")]
    assert len(rows) == 2 and f"{stamo:.3f}" in rows[0]  # one per task's table, PickCube first
    header = next(ln for ln in report.splitlines() if ln.startswith("| arm |"))
    assert (
        "| PickCube | PickPlace | PickCube (random encoder report) | PickPlace (random encoder report) |"
        in header
    )
    none_row = next(ln for ln in report.splitlines() if ln.startswith("| `none`"))
    assert none_row.count("%") == 0 and len(none_row.split(" | ")) == 6  # arm, 2 tasks, 2 compared, paper
    assert f"The same claims in the random encoder report (`{published}`):" in report
    assert "The same claims" not in markdown(payload | {"compare": None})
    (tmp_path / "bad.json").write_text("{}")
    for bad in (tmp_path / "missing.json", tmp_path / "bad.json"):
        with pytest.raises(StamoInputError, match="is not the results.json of a report"):
            parse_args([*TINY, "--compare_with", str(bad)])


def test_the_report_says_which_code_ran():
    assert _code_line({"None": ["a"]}) == "Code: not recorded."
    assert _code_line({"1.0 (abc)": ["a", "b"]}) == "Code: `1.0 (abc)`."
    mixed = _code_line({"1.0 (abc)": ["a"], "1.0 (abc+dirty)": ["b"], "None": ["c"]})
    assert "(1 stage ran before the code version was recorded)" in mixed
    assert "**the stages ran with different code**" in mixed


def test_report_only_runs_nothing_and_a_second_run_is_refused(tmp_path):
    with pytest.raises(
        StamoInputError, match="No pipeline of --tasks=PickCube --seeds=0 has finished.*--report_only"
    ):
        run_paper(
            parse_args(
                [*TINY, "--work_dir", str(tmp_path), "--results_dir", str(tmp_path / "r"), "--report_only"]
            )
        )
    assert not (tmp_path / "PickCube_s0").exists()
    held = lock_work_dir(tmp_path)  # as a run in progress holds it
    with pytest.raises(
        StamoInputError, match=rf"Another lerobot-stamo-paper \(pid {os.getpid()}\) is running"
    ):
        run_paper(parse_args([*TINY, "--work_dir", str(tmp_path)]))
    held.close()


def test_pretrained_and_real_share_reach_the_commands_and_the_settings(tmp_path):
    """`--pretrained` (stamo_cpu preset, EfficientNet trunk) and `--real_share` (robot episodes repeated) are in
    the commands and in the settings, and a cache made without them is refused (and the reverse)."""
    from lerobot_stamo.paper.stages import cotrain_data_stage, train_args

    cfg = parse_args([*TINY, "--video_episodes", "2", "--pretrained", "--real_share", "0.5", "--work_dir",
                      str(tmp_path / "pretrained")])  # fmt: skip
    assert cfg.real_repeat == 2  # 1 real episode, 2 video episodes: the real one twice for half the frames
    settings = settings_of(cfg)
    assert (settings["pretrained"], settings["real_share"], settings["real_repeat"]) == (True, 0.5, 2)
    plain = parse_args([*TINY, "--video_episodes", "2", "--work_dir", str(tmp_path / "pretrained")])
    assert not {"pretrained", "real_share", "real_repeat"} & set(
        settings_of(plain)
    )  # published runs still match
    check_settings(plain, tmp_path / "pretrained")
    with pytest.raises(StamoInputError, match=r"--pretrained=True \(was: None\)"):
        check_settings(cfg, tmp_path / "pretrained")

    data = {"repo_id": "local/robot", "root": str(tmp_path / "robot")}
    r = {
        "record": {"robot": data},
        "label": {"robot": data},
        "stamo": {"checkpoint": str(tmp_path / "stamo")},
    }
    assert "--policy.vision=efficientnet_lite0" in train_args(cfg, "state", r, 0)
    assert "--policy.vision=efficientnet_lite0" not in train_args(plain, "state", r, 0)
    assert not any("vision" in arg for arg in train_args(cfg, "act", r, 0))

    class FakeStage:  # what `lerobot-stamo-cotrain` would have written for these arguments
        def call(self, script, config_cls, fn, args):
            self.args = args
            meta = Path(next(a for a in args if a.startswith("--output_dir=")).split("=", 1)[1]) / "meta"
            meta.mkdir(parents=True)
            (meta / "stamo_cotrain.json").write_text(
                json.dumps({"robot": {"frames": 40}, "video": {"frames": 44}})
            )

    stage = FakeStage()
    result = cotrain_data_stage(cfg, tmp_path / "run", {"robot": data, "video": data})(stage)
    assert "--real_repeat=2" in stage.args
    assert result["real_repeat"] == 2 and result["real_share"] == pytest.approx(40 / 84)
