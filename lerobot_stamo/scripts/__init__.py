"""This project's console scripts (`[project.scripts]` in pyproject.toml)."""

from lerobot_stamo.activation import activate

activate()  # each of them shows a user error's fix as its last line (`lerobot_stamo.activation`)
