"""`<results_dir>/runs/`: the finished task-and-seed pipelines, kept beside the report and committed with it.

While a pipeline runs, its stages are cached in `--work_dir` with its datasets and checkpoints, which stay on
the machine that made them. Once every stage of a pipeline has finished, its stage results (figures, commands,
code version: small JSON) and its two figures are published to `<results_dir>/runs/<task>_s<seed>/`, with
`run.json` (the settings they were made with) written last and the folder renamed into place. A later run, on
any machine, reads a published pipeline back instead of running it again, and the report covers every published
pipeline: a full run spread over machines whose work folders are not kept adds up in the repository. The cost
stage (measured once) is published as `cost.json`. Delete a pipeline's folder to run it again.

A pipeline cut short (a machine lent for less time than a pipeline takes) is published in part, by the run
itself as its arms finish and by `--report_only`: its finished stages, with `complete: false` and the sha256
of what its policy arms trained on (`inputs`: the datasets and the stamo's weights). A later run on any
machine makes those inputs again (the stages before the arms are deterministic on CPU), checks that they are
the same bytes, and runs only the arms still missing; a difference is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lerobot_stamo.errors import StamoInputError
from lerobot_stamo.paths import replace_folder, write_text_atomically

from .config import ARMS

RUN_FILE = "run.json"
COST_FILE = "cost.json"
# The stage results that name a figure: published with a copy of it beside them.
FIGURES = {"reconstruction": ("png", "reconstructions.png"), "interpolation": ("files", "interpolation.png")}


def ledger_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "runs"


def relative_to_cwd(text: str) -> str:
    """`text` with this folder's absolute prefix removed: paths and commands that hold from the repository root."""
    return text.replace(f"{Path.cwd()}{os.sep}", "")


def settings_differences(settings: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """`--flag=value (was: value)` for every setting that differs from `other` (a setting either one lacks
    included: a run with `--pretrained` never mixes with one without)."""
    keys = [*settings, *(key for key in other if key not in settings)]
    return [
        f"--{key}={settings.get(key)} (was: {other.get(key)})"
        for key in keys
        if other.get(key) != settings.get(key)
    ]


def write_json(path: Path, payload: Any) -> None:
    """Writes JSON to a temporary file, then renames it: a reader sees the whole file or none."""
    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")


def _figure(result: dict[str, Any], stage: str) -> str | None:
    key, _ = FIGURES[stage]
    value = result.get(key)
    if isinstance(value, list):  # interpolation: its strip (the GIF is not kept)
        value = next((f for f in value if f.endswith(".png")), None)
    return value


def tree_digest(root: str | Path, skip: tuple[str, ...] = ()) -> str:
    """sha256 over the names and contents of every file under `root` (a file itself: its contents), but the
    `skip` globs: the same data on any machine and in any folder has the same digest. A JSON file counts by its
    values and a Parquet file by its table (columns by name, no schema metadata): both are written in an order
    that changes from one process to the next (Python's string hashing), their data does not."""
    root, h = Path(root), hashlib.sha256()
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist: nothing to digest")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        if any(path.match(pattern) for pattern in skip):
            continue
        name = path.relative_to(root).as_posix() if path != root else ""
        h.update(name.encode() + b"\0" + _content(path) + b"\0")
    return h.hexdigest()


def _content(path: Path) -> bytes:
    if path.suffix == ".json":
        return json.dumps(json.loads(path.read_text()), sort_keys=True).encode()
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        table = table.select(sorted(table.column_names)).replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()
    return path.read_bytes()


def publish(
    ledger: Path,
    task: str,
    seed: int,
    settings: dict[str, Any],
    stages: dict[str, dict],
    inputs: dict[str, str] | None = None,
    complete: bool = True,
) -> Path:
    """Copies a pipeline's finished stage results and figures to `<ledger>/<task>_s<seed>/` (one rename); a
    part published before is replaced, a complete pipeline kept as it is."""
    out, tmp = ledger / f"{task}_s{seed}", ledger / f".{task}_s{seed}.tmp"
    if (out / RUN_FILE).is_file() and json.loads((out / RUN_FILE).read_text()).get("complete", True):
        return out  # published already (by a run beside this one)
    if out.exists() and not (out / RUN_FILE).is_file():
        raise StamoInputError(
            f"{out} exists but holds no {RUN_FILE}: it is not a pipeline this command published. Move it away and "
            "run the same command again."
        )
    if tmp.exists():
        shutil.rmtree(tmp)  # left by an interrupted publish: this function made it
    tmp.mkdir(parents=True)
    for name, result in stages.items():
        result = json.loads(relative_to_cwd(json.dumps(result)))
        if name in FIGURES:
            key, figure = FIGURES[name]
            source = _figure(stages[name], name)
            if source and Path(source).is_file():
                shutil.copyfile(source, tmp / figure)
                result[key] = [figure] if key == "files" else figure
        write_json(tmp / f"{name}.json", result)
    write_json(tmp / RUN_FILE, {"task": task, "seed": seed, "settings": settings, "stages": list(stages),
                                 "complete": complete, "inputs": inputs or {},
                                 "published": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")})  # fmt: skip
    return replace_folder(tmp, out)  # a part published before is removed once this one is in place


def read_published(ledger: Path, settings: dict[str, Any]) -> dict[tuple[str, int], dict[str, dict]]:
    """Every completely published pipeline, `{(task, seed): {stage: result}}` (figure paths made absolute); one
    made with other settings is refused rather than averaged with these."""
    return {
        key: stages
        for key, (run, stages) in _read_runs(ledger, settings).items()
        if run.get("complete", True)
    }


def read_partial(
    ledger: Path, settings: dict[str, Any]
) -> dict[tuple[str, int], tuple[dict, dict[str, dict]]]:
    """Every pipeline published in part, `{(task, seed): (run.json, {stage: result})}`."""
    return {
        key: value
        for key, value in _read_runs(ledger, settings).items()
        if not value[0].get("complete", True)
    }


def _read_runs(ledger: Path, settings: dict[str, Any]) -> dict[tuple[str, int], tuple[dict, dict[str, dict]]]:
    runs = {}
    for run_file in sorted(ledger.glob(f"*/{RUN_FILE}")):
        folder, run = run_file.parent, json.loads(run_file.read_text())
        changed = settings_differences(settings, run["settings"])
        if changed:
            raise StamoInputError(
                f"{folder} holds a pipeline published with other settings: {', '.join(changed)}. Pass the same "
                "settings to continue that run, or another --results_dir for a new one."
            )
        stages = {name: json.loads((folder / f"{name}.json").read_text()) for name in run["stages"]}
        for name, (key, _) in FIGURES.items():
            figure = _figure(stages[name], name) if name in stages else None
            if figure:
                path = str(folder / figure)
                stages[name][key] = [path] if key == "files" else path
        runs[(run["task"], int(run["seed"]))] = run, stages
    return runs


def read_cost(ledger: Path) -> dict[str, Any] | None:
    path = ledger / COST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def publish_cost(ledger: Path, cost: dict[str, Any]) -> None:
    if not (ledger / COST_FILE).is_file():
        write_json(ledger / COST_FILE, json.loads(relative_to_cwd(json.dumps(cost))))


# ------------------------------------------------------------------ a pipeline published in part
# Provenance the datasets carry (absolute paths, times): not part of what an arm trains on.
PROVENANCE = ("meta/stamo_*.json",)


def input_digests(r: dict[str, Any]) -> dict[str, str]:
    """sha256 of what the policy arms train on, from the finished stages in `r`: the recorded episodes (ACT),
    then the labelled and co-training datasets and the stamo's weights."""
    out = {"robot": tree_digest(r["record"]["robot"]["root"], PROVENANCE)}
    if "cotrain_data" in r:
        out |= {
            "robot_labelled": tree_digest(r["label"]["robot"]["root"], PROVENANCE),
            "cotrain": tree_digest(r["cotrain_data"]["root"], PROVENANCE),
            "stamo": tree_digest(Path(r["stamo"]["checkpoint"]) / "model.safetensors"),
        }
    return out


def check_inputs(where: Path, published: dict[str, str], made: dict[str, str]) -> None:
    """Refuses to add arms to a pipeline published in part when what they would train on differs from what its
    published arms trained on."""
    differ = [name for name, digest in made.items() if name in published and published[name] != digest]
    if differ:
        raise StamoInputError(
            f"The {', '.join(differ)} made again here differ from those the stages published in {where} were "
            "made from (another machine or library version can change them), so new arms cannot be added to "
            f"them. Delete {where} to run that pipeline again from the start."
        )


def adoptable_arms(stages: dict[str, dict], cost_known: bool) -> list[str]:
    """The arms of a pipeline published in part that need not run again: trained and evaluated (`none` and
    `state` only once the cost, which times their checkpoints, is published)."""
    return [
        arm
        for arm in ARMS
        if {f"train_{arm}", f"eval_{arm}"} <= set(stages) and (cost_known or arm not in ("none", "state"))
    ]
