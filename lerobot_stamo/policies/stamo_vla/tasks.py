"""The instruction (`task`) of an observation, checked before it is tokenised."""

from typing import Any

from lerobot.processor import EnvTransition, TransitionKey


def checked_tasks(transition: EnvTransition, task_key: str = "task") -> list[str]:
    """The task strings of a transition, one per batch item.

    LeRobot's tokenizer step raises a bare `KeyError: 'task'` without one, and "Task cannot be None" for a task
    that is not a string.

    Raises:
        ValueError: Without a task, or for a task that is neither a string nor a list of strings.
    """
    data: dict[str, Any] = transition.get(TransitionKey.COMPLEMENTARY_DATA) or {}
    task = data.get(task_key)
    if task is None:
        raise ValueError(
            f"The observation has no `{task_key}`: stamo_vla reads the instruction. Add it, e.g. "
            f'`observation["{task_key}"] = "pick up the cube"` (a string, or a list of one string per batch item); '
            "lerobot-record and lerobot-rollout take it from --dataset.single_task (or --task)."
        )
    if isinstance(task, str):
        return [task]
    if isinstance(task, list | tuple) and task and all(isinstance(t, str) for t in task):
        return list(task)
    raise ValueError(
        f"`{task_key}` must be a string or a non-empty list of strings (one per batch item), got "
        f'{type(task).__name__} {task!r:.80}. Pass the instruction as text, e.g. "pick up the cube".'
    )
