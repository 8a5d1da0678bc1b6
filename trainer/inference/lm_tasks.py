"""The lm-evaluation-harness tasks of `infer.tasks`, found and their data loaded before any model loads.

Everything a user can get wrong here (lm-eval not installed, a task folder that does not exist, a task
name lm-eval does not know, a dataset on an unreachable hub) is a `UserError` raised while the model is
still on disk, so a mistake costs seconds, not a model load.

The tasks shipped in trainer/assets/lm_eval_tasks/ are always included, so `tiny_tasks_mc` and
`tiny_tasks_gen` work by name. lm-eval's own index of its ~15,000 tasks takes about 20 s to build on a
small CPU, so it is only built when a name is not a task of ours or of `infer.task_dirs`.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from pathlib import Path
from typing import Any

from trainer.assets import asset_path
from trainer.config import TrainConfig
from trainer.errors import UserError, first_line

SHIPPED = Path(asset_path("lm_eval_tasks"))
INSTALL = "pip install 'trainer[eval]'"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# dataset_path values that name a datasets builder for local files, not a dataset on the hub.
LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "xml", "sql", "webdataset"}


def tiny_tasks_dataset(**_: Any) -> Any:
    """The shipped tasks' documents (their YAML names this as `custom_dataset`): built from the JSONL
    beside them, so they load from any working folder and write nothing to the datasets cache."""
    from datasets import Dataset, DatasetDict

    def records(name: str) -> list[dict[str, Any]]:
        lines = (SHIPPED / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    return DatasetDict(
        test=Dataset.from_list(records("tiny_tasks.jsonl")),
        train=Dataset.from_list(records("tiny_tasks_fewshot.jsonl")),
    )


def require_lm_eval(cfg: TrainConfig) -> None:
    """lm-eval is an optional extra: without it, say how to get it rather than fail on an import."""
    try:
        import lm_eval  # noqa: F401
    except ImportError as err:
        raise UserError(
            f"infer.tasks={_listed(cfg.infer.tasks)}: running lm-eval tasks needs lm-evaluation-harness, "
            f"which is not installed ({first_line(err)})",
            hint=f"{INSTALL}, or drop infer.tasks to score the run's own data",
        ) from None


def task_folders(cfg: TrainConfig) -> list[Path]:
    """The shipped tasks' folder and `infer.task_dirs`, each checked to be a folder."""
    folders = [SHIPPED]
    for given in cfg.infer.task_dirs:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            what = "is a file, not a folder" if path.exists() else "no such folder"
            raise UserError(
                f"infer.task_dirs: {given}: {what}",
                hint="give folders holding lm-eval task YAMLs (they are searched recursively)",
            )
        folders.append(path)
    return folders


def task_manager(cfg: TrainConfig, folders: list[Path]) -> Any:
    """A TaskManager that knows every name of `infer.tasks`; unknown names are a UserError."""
    from lm_eval.tasks import TaskManager

    names = cfg.infer.tasks
    own = TaskManager(include_path=[str(f) for f in folders], include_defaults=False)
    # Only plain tasks: a group or tag of ours may name lm-eval's tasks, which only the full index holds.
    if all(name in own.all_subtasks or _is_yaml(name) for name in names):
        return own
    full = _full_manager(tuple(str(f) for f in folders))
    unknown = [name for name in names if name not in full.all_tasks and not _is_yaml(name)]
    if unknown:
        close = {name: difflib.get_close_matches(name, full.all_tasks, n=4, cutoff=0.6) for name in unknown}
        said = "; ".join(
            f"{name} (close: {', '.join(matches)})" if matches else name for name, matches in close.items()
        )
        raise UserError(
            f"infer.tasks: unknown lm-eval task {said}",
            hint="`lm-eval ls tasks` lists lm-eval's tasks; for a task of your own, put its YAML in a folder "
            "and pass infer.task_dirs=[FOLDER] (built in: tiny_tasks_mc, tiny_tasks_gen)",
        )
    return full


@functools.lru_cache(maxsize=2)
def _full_manager(folders: tuple[str, ...]) -> Any:
    """lm-eval's whole index plus ours (ours win on a clash); kept for a second call in one process."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(folders))


def load_tasks(cfg: TrainConfig, manager: Any) -> list[Any]:
    """The Task and Group objects of `infer.tasks`, their documents loaded (from a hub, a cache or local
    files): what `simple_evaluate` then runs without loading anything again."""
    built: list[Any] = []
    for name in cfg.infer.tasks:
        try:
            loaded = manager.load([name])
        except Exception as err:  # a dataset that cannot be had: any of datasets' or the hub's errors
            raise _data_error(name, manager, err) from None
        built += _top_level(loaded)
    return built


def _top_level(loaded: dict[str, Any]) -> list[Any]:
    """The groups no other group holds, and the tasks outside every group, of one `TaskManager.load`."""
    groups = loaded.get("groups") or {}
    children = {c for names in (loaded.get("group_map") or {}).values() for c in names}
    tops = [group for name, group in groups.items() if name not in children]
    inside = {task.task_name for group in tops for task in group.get_all_tasks()}
    return tops + [task for name, task in loaded["tasks"].items() if name not in inside]


def _data_error(name: str, manager: Any, err: Exception) -> UserError:
    """Which task, which dataset, why; for a dataset on the hub, how to run the task on local files."""
    entry = manager.task_index.get(name)
    cfg = (entry.cfg if entry is not None else None) or {}
    path = cfg.get("dataset_path")
    local = cfg.get("custom_dataset") or (
        path and (path in LOCAL_BUILDERS or Path(path).expanduser().exists())
    )
    on_hub = not local  # a hub id, or a group or tag of lm-eval's (their tasks read the hub)
    dataset = f"{path} ({cfg['dataset_name']})" if path and cfg.get("dataset_name") else path
    offline = [f"{var}={os.environ[var]}" for var in OFFLINE_VARS if _truthy(os.environ.get(var))]
    where = f"; offline: {' '.join(offline)}" if offline and on_hub else ""
    what = f"its dataset {dataset}" if dataset else "its documents"
    yaml_path = getattr(entry, "yaml_path", None) or "its YAML"
    message = (
        f"infer.tasks: task {name} could not load {what} ({type(err).__name__}: {first_line(err)}{where})"
    )
    if not on_hub:
        return UserError(
            message,
            hint=f"check dataset_kwargs.data_files in {yaml_path} (relative paths are read from the folder "
            "trainer evaluate runs in)",
        )
    return UserError(
        message,
        hint=f"to run it on local data, copy {yaml_path} (and any file it includes) into a folder of your "
        "own, set `dataset_path: json` "
        "and `dataset_kwargs: {data_files: {SPLIT: /path/to/file.jsonl}}` for the splits it names, and pass "
        "infer.task_dirs=[FOLDER]; or load the dataset once where the Hugging Face hub is reachable (it is "
        "then read from the datasets cache)",
    )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _is_yaml(name: str) -> bool:
    """lm-eval also takes a path to a task YAML in place of a name."""
    return name.endswith((".yaml", ".yml")) and Path(name).expanduser().is_file()


def _listed(values: list[str]) -> str:
    return "[" + ",".join(values) + "]"
