"""The front door stays true: links and anchors in the docs resolve, the README's commands are CI's, the
version is one number, and the wheel a user installs carries its metadata, entry points and presets and works
outside the clone."""

import email
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import lerobot_stamo
from lerobot_stamo import cards

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCS = sorted(
    [
        REPO / "README.md",
        REPO / "CHANGELOG.md",
        REPO / "benchmarks" / "README.md",
        *(REPO / "docs").rglob("*.md"),
    ]
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {github_anchor(m) for m in re.findall(r"^#+\s+(.*)$", text, re.M)}


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(doc):
    broken = []
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


def test_readme_is_a_front_page_whose_test_command_is_ci():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    ci = [line for line in ci if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == ["make test"], ".ci/run must run exactly the README's test command"
    assert "docs/results/interpolation.png" in readme and (REPO / "docs/results/interpolation.png").is_file()


def test_every_example_is_linked_from_the_docs():
    text = "".join(p.read_text() for p in DOCS)
    for example in (REPO / "examples").iterdir():
        if not example.name.startswith("_"):
            assert f"examples/{example.name}" in text, (
                f"{example.name} is not linked from the README or docs/"
            )


def test_one_version_released_in_the_changelog():
    version = PYPROJECT["project"]["version"]
    assert lerobot_stamo.__version__ == version
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert releases[:2] == ["Unreleased", version], "CHANGELOG: `## [Unreleased]`, then the current version"
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_cards_link_to_the_project_urls():
    urls = PYPROJECT["project"]["urls"]
    assert urls["Homepage"] == cards.PROJECT_URL and urls["Paper"] == cards.PAPER_URL
    assert cards.DOCS_URL.startswith(urls["Repository"])
    for kind in ("sim_record", "label", "cotrain"):
        page = cards.dataset_card_kwargs(kind)["dataset_description"].split(f"{cards.DOCS_URL}/")[1]
        file, _, anchor = page.rstrip(").").partition("#")
        assert (REPO / "docs" / file).is_file() and (not anchor or anchor in anchors(REPO / "docs" / file))
    for card, page in (("stamo", "stamo.md"), ("stamo_vla", "stamo-vla.md")):
        template = (REPO / "lerobot_stamo" / "policies" / card / "model_card.md").read_text()
        assert f"{{{{ docs_url }}}}/{page}" in template and (REPO / "docs" / page).is_file()


def build_wheel(tmp_path: Path) -> Path:
    """The wheel `python -m build` makes, built by setuptools' PEP 517 backend from a copy of the sources."""
    src = tmp_path / "src"
    shutil.copytree(
        REPO / "lerobot_stamo", src / "lerobot_stamo", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE", "lerobot_policy_stamo.py"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path / "dist"
    code = f"import setuptools.build_meta as b; print(b.build_wheel({str(out)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / proc.stdout.strip().splitlines()[-1]


def test_wheel_has_the_metadata_entry_points_and_package_data(tmp_path):
    wheel = build_wheel(tmp_path)
    project = PYPROJECT["project"]
    assert wheel.name == f"lerobot_policy_stamo-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"lerobot_policy_stamo-{project['version']}.dist-info"
        meta = email.message_from_bytes(zf.read(f"{info}/METADATA"))
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    # LeRobot discovers plug-ins by the raw distribution name: underscores, `lerobot_policy_` prefix.
    assert meta["Name"] == "lerobot_policy_stamo" and meta["Version"] == project["version"]
    assert meta["License-Expression"] == "Apache-2.0" and meta["License-File"] == "LICENSE"
    assert f"{info}/licenses/LICENSE" in names
    assert meta["Requires-Python"] == ">=3.12"
    assert set(meta.get_all("Classifier")) == set(project["classifiers"])
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {k.lower(): v for k, v in urls.items()} == {k.lower(): v for k, v in project["urls"].items()}
    assert (
        meta.get_payload().startswith("# lerobot-stamo")
        and meta["Description-Content-Type"] == "text/markdown"
    )
    assert "hardware" in meta.get_all("Provides-Extra")

    scripts = dict(re.findall(r"^(\S+) = (\S+)$", entry_points.split("[console_scripts]")[1], re.M))
    assert scripts == project["scripts"]
    for target in scripts.values():  # every console script points at a function that exists
        module, func = target.split(":")
        assert callable(getattr(__import__(module, fromlist=[func]), func)), target

    assert "lerobot_policy_stamo.py" in names  # the module LeRobot imports
    package = {str(p.relative_to(REPO)) for p in (REPO / "lerobot_stamo").rglob("*") if p.is_file()}
    package = {p for p in package if "__pycache__" not in p}
    assert package <= names, f"missing from the wheel: {sorted(package - names)}"
    presets = {p.name for p in (REPO / "lerobot_stamo" / "configs").glob("*.json")}
    assert presets and {f"lerobot_stamo/configs/{name}" for name in presets} <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))]


@pytest.mark.slow
def test_the_wheel_works_outside_the_clone(tmp_path):
    """The built wheel, pip-installed into a fresh virtual environment, from a folder with no clone: the plug-in
    and its presets come from the installed package, every console script answers `--help`, and LeRobot's
    own `lerobot-train` knows `--policy.type=stamo_vla`. The fresh environment reuses this one's dependencies
    (a `.pth` line: no download), so only the wheel's own files are new."""
    import site
    import sysconfig

    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies, after the fresh site-packages (a plain path line: the editable install's own .pth
    # files, which point at the clone, are not run).
    deps = site.getsitepackages() if hasattr(site, "getsitepackages") else [sysconfig.get_paths()["purelib"]]
    (Path(purelib) / "_project_deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)  # fmt: skip

    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl",
           "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}  # fmt: skip
    where = subprocess.run(
        [python, "-c", "import lerobot_stamo, lerobot_stamo.paths as p; print(lerobot_stamo.__file__); "
         "print(sorted(x.name for x in p.PRESETS_DIR.glob('*.json')))"],
        cwd=away, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert where[0].startswith(purelib), f"lerobot_stamo imported from {where[0]}, not the installed wheel"
    assert "'stamo_cpu.json'" in where[1] and "'stamo_tiny.json'" in where[1]

    commands = [[venv / "bin" / name, "--help"] for name in PYPROJECT["project"]["scripts"]]
    commands.append([python, "-m", "lerobot.scripts.lerobot_train", "--policy.type=stamo_vla", "--help"])
    procs = [subprocess.Popen(c, cwd=away, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]  # fmt: skip
    for command, proc in zip(commands, procs, strict=True):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{command[0].name} --help failed:\n{out[-3000:]}"
        assert "usage" in out.lower(), f"{command[0].name} --help printed no usage:\n{out[-2000:]}"
    assert "--policy.world_model_target" in out  # the stamo_vla options, through LeRobot's own command
