"""`docs/results/`: report.md (our tables beside the paper's numbers), PNG plots and results.json."""

from __future__ import annotations

import math
import os
import platform
import shlex
import shutil
import statistics
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from lerobot_stamo.paths import write_atomically, write_text_atomically

from .config import ARMS, FULL_SEEDS, FULL_TASKS, REUSED_ARMS
from .ledger import relative_to_cwd, write_json
from .pipeline import PIPELINE_STAGES

# From /work/shared/reference/stamo-method.md (LIBERO unless said otherwise).
PAPER = {
    "reconstruction": {
        "psnr_db": [24.65, 27.25],
        "ssim": [0.891, 0.911],
        "setting": "LIBERO suites, SD3 decoder",
    },
    "world_model": {
        "openvla": 76.5,
        "openvla_stamo_state": 87.6,
        "openvla_stamo_motion": 88.1,
        "oft": 92.2,
        "oft_stamo_state": 96.8,
        "setting": "LIBERO average success (%)",
    },  # fmt: skip
    "cotrain": {"real10": 62.9, "cotrain": 84.6, "real50": 86.2, "setting": "LIBERO average success (%)"},
    "probe": "StaMo has the lowest MSE at every horizon k in {1, 2, 4, 8} (published only as a plot, Fig. 4)",
    "goal_conditioned": {
        "stamo": [22, 32, 16, 38],
        "dino_wm": [12, 8, 4, 18],
        "setting": "ManiSkill, 4 tasks",
    },
    "cost": {
        "oft_hz": 18.24,
        "oft_stamo_hz": 17.82,
        "slowdown": 0.023,
        "setting": "OpenVLA-OFT, one RTX 4090",
    },
}
REPRESENTATIONS = {"stamo": "StaMo", "backbone": "Delta backbone features", "pixels": "Pooled Delta Image"}
PACKAGES = ("lerobot", "lerobot-policy-stamo", "torch", "transformers", "diffusers", "mujoco", "numpy")


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,  # sample std over seeds
        "values": [float(v) for v in values],
    }


# The paper's policy claims, as (better arm, than arm, what it says).
CLAIMS = (
    ("state", "none", "world model `state` over `none` (Table 2)"),
    ("motion", "none", "world model `motion` over `none` (Table 2)"),
    ("cotrain", "real10", "co-training `cotrain` over `real10` (Table 5)"),
)


def claim_lines(summary: dict[str, Any]) -> list[str]:
    """Each claim's difference in success per task with a 95 % interval of the evaluation's binomial noise."""
    lines = []
    for better, than, claim in CLAIMS:
        cells = []
        for task, s in summary.items():
            a, b = s["success"][better], s["success"][than]
            n = s["eval_episodes"] * len(a["values"])  # episodes over all seeds
            half = 1.96 * math.sqrt((a["mean"] * (1 - a["mean"]) + b["mean"] * (1 - b["mean"])) / n)
            diff = a["mean"] - b["mean"]
            verdict = (
                "a gain" if diff - half > 0 else "a loss" if diff + half < 0 else "no significant difference"
            )
            cells.append(f"{task} {100 * diff:+.0f} ± {100 * half:.0f} points ({n} episodes each): {verdict}")
        lines.append(f"- {claim}: " + "; ".join(cells) + ".")
    return lines


def _cell(s: dict[str, Any], fmt: str = "{:.3f}", scale: float = 1.0, per_seed: bool = False) -> str:
    """`mean ± std` over seeds (the mean alone for one seed); `per_seed`: each seed's value after it."""
    mean, std = fmt.format(s["mean"] * scale), fmt.format(s["std"] * scale)
    if len(s["values"]) == 1:
        return mean
    seeds = f" ({', '.join(fmt.format(v * scale) for v in s['values'])})" if per_seed else ""
    return f"{mean} ± {std}{seeds}"


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Mean and std over seeds of every figure, per task."""
    out: dict[str, Any] = {}
    for task, seeds in result["runs"].items():
        runs = list(seeds.values())
        recon = {
            m: _stats([r["reconstruction"][m] for r in runs])
            for m in ("psnr", "ssim", "psnr_vae", "ssim_vae")
        }
        ks = runs[0]["probe"]["report"]["horizons"]
        probe: dict[str, Any] = {}
        for name in REPRESENTATIONS:
            probe[name] = {
                kind: {str(k): _stats([r["probe"]["report"]["results"][name][kind][str(k)]["mean"] for r in runs])
                       for k in ks}
                for kind in ("linear", "mlp")
            }  # fmt: skip
        probe["goal_conditioned"] = {
            str(k): _stats([r["probe"]["report"]["goal_conditioned"]["mse"][str(k)]["mean"] for r in runs])
            for k in ks
        }
        probe["mean_baseline"] = {
            str(k): _stats([r["probe"]["report"]["baseline"]["mse"][str(k)]["mean"] for r in runs])
            for k in ks
        }
        success = {arm: _stats([r[f"eval_{arm}"]["success_rate"] for r in runs]) for arm in ARMS}
        for arm, source in REUSED_ARMS.items():
            success[arm] = success[source]
        out[task] = {
            "horizons": ks,
            "reconstruction": recon,
            "probe": probe,
            "success": success,
            "eval_episodes": runs[0][f"eval_{next(iter(ARMS))}"]["n_episodes"],
            "label_frames_per_s": _stats([r["label"]["frames_per_s"] for r in runs]),
        }
    return out


def time_spent(result: dict[str, Any]) -> dict[str, Any]:
    """Where a pipeline's time goes: the median wall-clock seconds of each stage over the pipelines that
    recorded it (a pipeline recovered from an old report has none), and each such pipeline's sum."""
    per_stage: dict[str, list[float]] = {}
    totals: dict[str, float] = {}
    for task, seeds in result["runs"].items():
        for seed, run in seeds.items():
            walls = {name: r["wall_s"] for name, r in run.items() if isinstance(r, dict) and "wall_s" in r}
            for name, wall in walls.items():
                per_stage.setdefault(name, []).append(wall)
            if walls:
                totals[f"{task}_s{seed}"] = sum(walls.values())
    return {"median_s": {name: statistics.median(v) for name, v in per_stage.items()}, "total_s": totals}


def _time_lines(spent: dict[str, Any], jobs: int) -> list[str]:
    if not spent["total_s"]:
        return ["Not recorded: these pipelines ran before stages recorded their wall-clock time.", ""]
    median, total = spent["median_s"], sum(spent["median_s"].values())
    rows = sorted(median.items(), key=lambda item: -item[1])
    sums = ", ".join(f"{tag} {s / 3600:.1f} h" for tag, s in spent["total_s"].items())
    return ["| stage | median (min) | share |", "|---|---|---|",
            *(f"| `{name}` | {s / 60:.1f} | {s / total:.0%} |" for name, s in rows),
            f"| sum | {total / 60:.0f} | |", "",
            f"Sum of each pipeline's stages: {sums}. Stages run {jobs} at a time (`--jobs`), each on one thread, "
            "so the time a pipeline takes is about that sum over the jobs when they are kept busy.", ""]  # fmt: skip


def _stage_results(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every stage's result by its name (`<task>_s<seed>_<stage>`, `cost`)."""
    return {f"{task}_s{seed}_{name}": r for task, seeds in result["runs"].items()
            for seed, run in seeds.items() for name, r in run.items()} | ({"cost": result["cost"]} if result["cost"] else {})  # fmt: skip


def _act_flags(commands: dict[str, list[str]]) -> str:
    """The chunk and learning rate ACT's `lerobot-train` ran with, as its flags (read from the recorded command)."""
    train = next(c for name, cmds in commands.items() if name.endswith("_train_act") for c in cmds)
    wanted = ("--policy.chunk_size=", "--policy.optimizer_lr=")
    return " ".join(f"`{a}`" for a in shlex.split(train) if a.startswith(wanted))


def code_versions(result: dict[str, Any]) -> dict[str, list[str]]:
    """Which stages ran with which version of this project's code (stages cached before it was recorded: None)."""
    versions: dict[str, list[str]] = {}
    for name, r in _stage_results(result).items():
        versions.setdefault(str(r.get("code")), []).append(name)
    return {v: sorted(names) for v, names in versions.items()}  # stable: stages finish in any order


def _code_line(versions: dict[str, list[str]]) -> str:
    known = [v for v in versions if v != "None"]
    if not known:
        return "Code: not recorded."
    text = f"Code: {', '.join(f'`{v}`' for v in known)}"
    if "None" in versions:
        n = len(versions["None"])
        text += f" ({n} stage{'s' * (n != 1)} ran before the code version was recorded)"
    if len(known) > 1:
        text += " - **the stages ran with different code** (which ran with which: `code` in `results.json`)"
    return text + "."


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "packages": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },  # fmt: skip
        "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def plot_probe(summary: dict[str, Any], path: Path) -> None:
    """Held-out MSE vs horizon per task (linear probes; error bars: std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lerobot_stamo.transforms.probe import style_probe_axes

    tasks = list(summary)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), dpi=120, squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        s = summary[task]
        ks = s["horizons"]
        lines = [(REPRESENTATIONS[n], s["probe"][n]["linear"], "-o") for n in REPRESENTATIONS]
        lines += [("Goal-conditioned (s_n, s_n+k)", s["probe"]["goal_conditioned"], "-^"),
                  ("Predict the training mean", s["probe"]["mean_baseline"], ":")]  # fmt: skip
        for i, (label, cells, style) in enumerate(lines):
            ax.errorbar(ks, [cells[str(k)]["mean"] for k in ks], yerr=[cells[str(k)]["std"] for k in ks],
                        fmt=style, color="black" if style == ":" else f"C{i}", capsize=3, label=label)  # fmt: skip
        style_probe_axes(ax, ks, f"Linear probe, {task}", legend=task == tasks[-1])
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_success(summary: dict[str, Any], path: Path) -> None:
    """Success rate per arm and task (bars: mean, error bars: std over seeds, dots: each seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [*ARMS, *REUSED_ARMS]
    tasks = list(summary)
    fig, ax = plt.subplots(figsize=(9, 3.8), dpi=120)
    width = 0.8 / len(tasks)
    x = np.arange(len(arms))
    for i, task in enumerate(tasks):
        s = summary[task]["success"]
        ax.bar(x + i * width, [100 * s[a]["mean"] for a in arms], width, yerr=[100 * s[a]["std"] for a in arms],
               capsize=3, label=task)  # fmt: skip
        for j, arm in enumerate(arms):
            seeds = [100 * v for v in s[arm]["values"]]
            ax.scatter([x[j] + i * width] * len(seeds), seeds, s=22, color="white", edgecolors="black", zorder=3,
                       label="one seed" if i == j == 0 else None)  # fmt: skip
    ax.set_xticks(x + width * (len(tasks) - 1) / 2, arms)
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Simulated SO-101: success per arm (mean ± std over seeds; dots: each seed)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def _savefig(fig, path: Path) -> None:
    write_atomically(path, fig.savefig)


def _copy(src: str | Path, dst: Path) -> None:
    write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def _scope(cfg: dict[str, Any], pipelines: dict[str, list[int]]) -> str:
    """What the report covers, said before any figure: a smoke run, or a part of the full run."""
    if cfg["quick"]:
        return " **A `--quick` smoke run: tiny settings, the numbers are not a measurement.**"
    runs, full = sum(len(seeds) for seeds in pipelines.values()), len(FULL_TASKS) * len(FULL_SEEDS)
    if runs >= full:
        return ""
    done = "; ".join(
        f"{task} seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"
        for task, seeds in pipelines.items()
    )
    return (
        f" **A part of the full run: {runs} of its {full} task-and-seed pipelines ({done})"
        + (" - one seed per task: no ± yet" if all(len(s) == 1 for s in pipelines.values()) else "")
        + ".** The others add to it as they finish (`lerobot-stamo-paper` reads the finished ones back from "
        "`runs/` beside this file)."
    )


def _in_part(in_part: dict[str, int]) -> str:
    """The pipelines published in part: left out of every table until they finish."""
    if not in_part:
        return ""
    parts = ", ".join(f"{tag} ({n} of {len(PIPELINE_STAGES)} stages)" for tag, n in in_part.items())
    return f" Published in part, left out of the tables until they finish: {parts}."


def markdown(payload: dict[str, Any]) -> str:
    cfg, summary, cost, env = payload["config"], payload["summary"], payload["cost"], payload["environment"]
    compare = payload.get("compare")
    others = {t: s for t, s in compare["summary"].items() if t in summary} if compare else {}
    pipelines = payload["pipelines"]
    done = "; ".join(f"{task} seeds {', '.join(map(str, seeds))}" for task, seeds in pipelines.items())
    lines = [
        "# StaMo's experiments on the simulated SO-101",
        "",
        f"Written by `{payload['command']}` on {env['written']} ({env['machine']['cpu_count']} CPUs, "
        f"{env['machine']['platform']}). Every figure below comes from `results.json` beside this file, which "
        "also holds the exact commands, seeds and package versions."
        + _scope(cfg, pipelines)
        + _in_part(payload.get("in_part", {}))
        + " "
        + _code_line(payload["code"]),
        "",
        f"Settings: {done} (the whole pipeline - record, train, probe, "
        f"evaluate - per seed; ± is the sample std over seeds); {cfg['episodes']} robot episodes per task "
        f"({len(payload['test_episodes'])} held out), {cfg['video_episodes']} video episodes, "
        f"{cfg['image_size']} px; tiny `stamo` {cfg['stamo_steps']} steps; policies {cfg['policy_steps']} steps "
        f"of batch {cfg['batch_size']}; {cfg['eval_episodes']} evaluation episodes per policy and seed (env seeds "
        f"from {payload['eval_seed']}). The paper trains a 2 B-parameter decoder and 7 B VLAs on LIBERO; here "
        "everything is tiny and CPU-trained, so compare trends, not absolute numbers. " + _encoder_line(cfg),
        "",
        "## 1. Reconstruction (held-out episodes)",
        "",
        "| task | PSNR (dB) | SSIM | PSNR / SSIM vs the VAE round trip |",
        "|---|---|---|---|",
    ]
    for task, s in summary.items():
        r = s["reconstruction"]
        lines.append(f"| {task} | {_cell(r['psnr'], '{:.2f}')} | {_cell(r['ssim'])} | "
                     f"{_cell(r['psnr_vae'], '{:.2f}')} / {_cell(r['ssim_vae'])} |")  # fmt: skip
    p = PAPER["reconstruction"]
    lines += [f"| paper ({p['setting']}) | {p['psnr_db'][0]}-{p['psnr_db'][1]} | {p['ssim'][0]}-{p['ssim'][1]} | |",
              "", "Originals (top), VAE round trips, reconstructions (bottom):", "",
              "![reconstructions](reconstructions.png)", "",
              "## 2. Latent motion: interpolation and motion transfer", "",
              f"Start -> goal of episode 0 ({payload['figures_from']}) decoded along the straight line between their "
              "states; below, the same motion added to episode 1's first frame.", "", "![interpolation](interpolation.png)", "",
              "## 3. Linear probe (paper Fig. 4): held-out MSE of the action chunk", "",
              "Relative joint actions, standardised on the training episodes (predicting the mean scores ~1). "
              f"Paper: {PAPER['probe']}. Here 'Delta backbone features' come from "
              + ("the frozen ImageNet EfficientNet-Lite0 (pretrained, as the paper's frozen DINOv2)." if cfg.get("pretrained")
                 else "that tiny DINOv2, trained from scratch with the autoencoder, not from a pretrained one."), ""]  # fmt: skip
    for task, s in summary.items():
        ks = s["horizons"]
        lines += [f"**{task}**", "", "| representation | " + " | ".join(f"k={k}" for k in ks) + " |",
                  "|---|" + "---|" * len(ks)]  # fmt: skip
        rows = [("Predict the training mean", s["probe"]["mean_baseline"])]
        rows += [(f"{label} (linear)", s["probe"][n]["linear"]) for n, label in REPRESENTATIONS.items()]
        rows += [(f"{label} (MLP)", s["probe"][n]["mlp"]) for n, label in REPRESENTATIONS.items()]
        rows += [("Goal-conditioned (s_n, s_n+k), linear", s["probe"]["goal_conditioned"])]
        other = (compare or {}).get("summary", {}).get(task)
        if other and all(str(k) in other["probe"]["stamo"]["linear"] for k in ks):
            rows += [(f"StaMo, {compare['label']} report ({name})", other["probe"]["stamo"][kind])
                     for kind, name in (("linear", "linear"), ("mlp", "MLP"))]  # fmt: skip
        lines += [f"| {label} | " + " | ".join(_cell(c[str(k)]) for k in ks) + " |" for label, c in rows]
        best = [min(REPRESENTATIONS, key=lambda n: s["probe"][n]["linear"][str(k)]["mean"]) for k in ks]
        verdict = "reproduces" if all(b == "stamo" for b in best) else "does not reproduce"
        lines += ["", f"Lowest linear-probe MSE per horizon: {', '.join(REPRESENTATIONS[b] for b in best)} - the "
                  f"paper's claim (StaMo lowest at every k) {verdict} here.", ""]  # fmt: skip
    lines += ["![probe](probe_mse.png)", "", "## 4-5. Policies: world model (Table 2) and co-training (Table 5)", "",
              "Success rate (%) on the simulated task, mean ± std over seeds (each seed's in brackets). With "
              f"{cfg['eval_episodes']} evaluation episodes, one seed's rate has a standard error of up to "
              f"{50 / math.sqrt(cfg['eval_episodes']):.0f} points (at 50 %): smaller differences are noise.", ""]  # fmt: skip
    arms = [*ARMS, *REUSED_ARMS]
    labels = {**{a: ARMS[a]["label"] for a in ARMS}, "real50": "all real episodes (= the `state` arm's run)"}
    compared = [f"{t} ({compare['label']} report)" for t in others]
    lines += [
        "| arm | " + " | ".join([*summary, *compared]) + " | paper (LIBERO avg.) |",
        "|---|" + "---|" * (len(summary) + len(others) + 1),
    ]
    w, c = PAPER["world_model"], PAPER["cotrain"]
    paper_cell = {"none": f"{w['openvla']} (OpenVLA)", "state": f"{w['openvla_stamo_state']} (OpenVLA + state)",
                  "motion": f"{w['openvla_stamo_motion']} (OpenVLA + motion)", "act": "",
                  "real10": f"{c['real10']}", "cotrain": f"{c['cotrain']}", "real50": f"{c['real50']}"}  # fmt: skip
    for arm in arms:
        cells = [
            _cell(x["success"][arm], "{:.0f}", 100, per_seed=True)
            for x in [*summary.values(), *others.values()]
        ]
        lines.append(f"| `{arm}`: {labels[arm]} | " + " | ".join(cells) + f" | {paper_cell[arm]} |")
    share = cfg["real_episodes"] / (cfg["real_episodes"] + cfg["video_episodes"])
    lines += ["", f"`real10` trains on {cfg['real_episodes']} robot episodes; `cotrain` on the same plus "
              f"{cfg['video_episodes']} StaMo-labelled video episodes, both with the latent-action head "
              f"(`lambda_latent=1`); `real50` on all {cfg['episodes']}, without it. Every arm trains from scratch "
              f"for the same {cfg['policy_steps']} steps of batch {cfg['batch_size']}, ACT included (LeRobot's ACT "
              f"with {_act_flags(payload['commands'])}, its ResNet-18 without ImageNet weights, which are not "
              "available offline; LeRobot's default training run is 100,000 steps): a small budget, so the rates "
              "vary between seeds. `lerobot-train` samples frames uniformly (LeRobot has no weighted sampler), so "
              f"about {share:.0%} of `cotrain`'s frames carry a real action ({cfg['real_episodes']} of its "
              f"{cfg['real_episodes'] + cfg['video_episodes']} episodes): in the same steps its action head is "
              f"supervised on about {share:.0%} as many frames as `real10`'s (the paper does not say how it "
              "balances the two): a `cotrain` below `real10` may come from that budget rather than the labels.",
              "",
              "The paper's claims here (difference in success, ± the 95 % interval of the evaluation noise alone; "
              "the spread between seeds adds to it):", "", *claim_lines(summary), "", *_compared_claims(compare, others),
              "![success](success.png)", "", "## 6. Cost (1 CPU thread, batch 1)", "", *_cost_lines(cost),
              "## 7. Where the time goes (wall-clock per stage, this machine)", "",
              *_time_lines(payload["time_spent"], cfg.get("jobs", 1)),
              "## Reproduce", "", f"    {payload['command']}", "",
              "Stages are cached in the work folder; re-running the same command continues where it stopped. A pipeline "
              "whose stages have all finished is kept in `runs/` beside this file and read back from there, on any "
              "machine: delete its folder to run it again. Every stage's exact commands are in `results.json` "
              "(`commands`).", ""]  # fmt: skip
    return "\n".join(lines)


def _compared_claims(compare: dict[str, Any] | None, others: dict[str, Any]) -> list[str]:
    """The same claims in the report of `--compare_with`, for its tasks that this report has too."""
    if not others:
        return []
    return [
        f"The same claims in the {compare['label']} report (`{compare['path']}`):",
        "",
        *claim_lines(others),
        "",
    ]


def _cost_lines(cost: dict[str, Any] | None) -> list[str]:
    if cost is None:
        return [
            "Not measured yet: the cost stage runs after the first pipeline of a run, in its work folder.",
            "",
        ]
    return ["| measure | ours | paper |", "|---|---|---|",
            f"| action chunk, no world model (ms; chunks/s) | {cost['chunk_ms']['none']:.1f}; "
            f"{cost['chunks_per_s']['none']:.1f} | {PAPER['cost']['oft_hz']} Hz (OFT, GPU) |",
            f"| action chunk, world-model head trained (ms; chunks/s) | {cost['chunk_ms']['state']:.1f}; "
            f"{cost['chunks_per_s']['state']:.1f} | {PAPER['cost']['oft_stamo_hz']} Hz |",
            f"| ratio with / without | {cost['world_model_over_none']:.3f}x | "
            f"{1 / (1 - PAPER['cost']['slowdown']):.3f}x |",
            f"| trunk + world-model head: the 2-token future state (ms) | {cost['predict_tokens_ms']:.1f} | |",
            f"| the same, decoded into an image, {cost['decode_steps']} steps (ms) | "
            f"{cost['predict_and_decode_image_ms']:.1f} | |",
            f"| labelling throughput (frames/s, both cameras) | {cost['label_frames_per_s']:.0f} | |", ""]  # fmt: skip


def _encoder_line(cfg: dict[str, Any]) -> str:
    """What the encoders started from: the tiny preset's random parts, or (`--pretrained`) ImageNet weights."""
    vae = f"a tiny VAE fitted for {cfg['fit_vae_steps']} steps on synthetic frames"
    share = (
        f" The co-training dataset repeats its robot episodes for about {cfg['real_share']:.0%} of its frames with "
        "a real action (`--real_share`)."
        if cfg.get("real_share") is not None
        else ""
    )
    if cfg.get("pretrained"):
        return (
            "The `stamo` encoder reads a frozen EfficientNet-Lite0 with ImageNet weights (`configs/stamo_cpu.json`, "
            f"`--pretrained`: the only pretrained vision weights available offline), its tiny DiT over {vae} trains "
            "with the compressor; the `stamo_vla` arms see the frames through the same frozen ImageNet trunk. The "
            "paper's DINOv2-B and SD3 are pretrained (and DINOv2 frozen)." + share
        )
    return (
        "In particular no pretrained weights can be downloaded here: the `stamo`'s tiny DINOv2 and DiT start from "
        f"random weights and train with its compressor on the training episodes, over {vae}; the paper's DINOv2-B "
        "and SD3 are pretrained (and DINOv2 frozen)." + share
    )


def write_report(
    result: dict[str, Any], results_dir: Path, command: str, compare: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Writes report.md, probe_mse.png, success.png, reconstructions.png, interpolation.png and results.json.

    `compare`: `PaperConfig.compared()`, another report's summary, whose headline figures become rows."""
    from .config import EVAL_SEED

    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(result)
    pipelines = [
        (f"{task} seed {seed}", r) for task, seeds in result["runs"].items() for seed, r in seeds.items()
    ]
    # The figures of the first pipeline that has both (a recovered one may have none).
    figures_from, first = next(
        ((tag, r) for tag, r in pipelines if r["reconstruction"].get("png") and r["interpolation"]["files"]),
        pipelines[0],
    )
    cost = result["cost"]
    payload = {
        "command": command,
        "config": result["config"],
        "pipelines": {task: sorted(int(seed) for seed in seeds) for task, seeds in result["runs"].items()},
        "missing": result.get("missing", []),
        "in_part": result.get("in_part", {}),
        "figures_from": figures_from,
        "test_episodes": first["reconstruction"]["test_episodes"],
        "eval_seed": EVAL_SEED,
        "summary": summary,
        "cost": None if cost is None else {k: v for k, v in cost.items() if k != "commands"},
        "paper": PAPER,
        "environment": environment(),
        "code": code_versions(result),
        "time_spent": time_spent(result),
        "compare": compare,
        "commands": {
            name: [relative_to_cwd(c) for c in r.get("commands", [])]
            for name, r in _stage_results(result).items()
        },
    }
    written = {
        "probe_mse": out / "probe_mse.png",
        "success": out / "success.png",
        "reconstructions": out / "reconstructions.png",
        "interpolation": out / "interpolation.png",
        "report": out / "report.md",
        "results": out / "results.json",
    }
    plot_probe(summary, written["probe_mse"])
    plot_success(summary, written["success"])
    _copy(first["reconstruction"]["png"], written["reconstructions"])
    _copy(next(f for f in first["interpolation"]["files"] if f.endswith(".png")), written["interpolation"])
    write_text_atomically(written["report"], markdown(payload))
    write_json(written["results"], payload)  # last: its presence means the report is complete
    return written
