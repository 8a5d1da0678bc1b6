"""An Optuna search (`-m hparams_search=NAME`) checked whole before its first trial runs.

The search space is written in Hydra's override grammar, in the preset (`hydra.sweeper.params`) or on
the command line (`optimizer.lr='tag(log, interval(1e-4, 1e-2))'`, `peft.r=8,16`); here it becomes a
list of `Dimension`s (plain data, so the check runs before optuna is imported). Trials are sampled
later, so "every job validated up front" means: the settings validate (trainer/config/hparams_search.py)
and a training config validates at every corner of the space (each dimension at its low and its high,
every choice, one dimension at a time), so that a range reaching into invalid values is refused before
any trial runs instead of failing trials at random.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pydantic import ValidationError

from trainer.boundary.conf import CommandLine, parse, register_resolvers
from trainer.boundary.sweep import SHOWN, Sweep
from trainer.config import ConfigError
from trainer.config.hparams_search import SEARCH_KEY, SearchConfig
from trainer.config.problems import Problem, from_validation_error
from trainer.errors import UserError

SWEEPER = "hydra_plugins.trainer_search.optuna_sweeper.OptunaSweeper"  # `override /hydra/sweeper: optuna`


@dataclass(frozen=True)
class Dimension:
    """One searched key. kind: float | int (low..high, optional step, log scale) or choice (values)."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def corners(self) -> list[Any]:
        """The values a trial may take that are most likely to be refused: the ends, every choice."""
        if self.kind == "choice":
            return list(self.choices)
        return [self.low, self.high] if self.low != self.high else [self.low]


def is_search(hydra_cfg: DictConfig) -> bool:
    return OmegaConf.select(hydra_cfg, "hydra.sweeper._target_") == SWEEPER


def settings(hydra_cfg: DictConfig) -> SearchConfig:
    """`hydra.sweeper` validated; problems name their key under hydra.sweeper."""
    raw = OmegaConf.to_container(hydra_cfg.hydra.sweeper, resolve=True)
    assert isinstance(raw, dict)
    raw.pop("_target_", None)
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as err:
        problems = from_validation_error(err, {})
        raise ConfigError(
            [Problem(f"{SEARCH_KEY}.{p.key}", p.value, p.message, p.fix) for p in problems]
        ) from None


def _dimension(key: str, value: Any) -> Dimension:
    """A parsed sweep value as a Dimension; ValueError says what cannot be searched."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    tags = set(getattr(value, "tags", set()))
    unknown = tags - {"log", "int"}
    if unknown:
        raise ValueError(f"unknown tag {sorted(unknown)[0]!r} (tags: log, int)")
    log = "log" in tags
    if isinstance(value, ChoiceSweep):
        if log:
            raise ValueError("tag(log, ...) applies to interval() and range(), not to choices")
        return Dimension(key, "choice", choices=tuple(value.list))
    if isinstance(value, RangeSweep):
        values = list(value.range())
        if not values:
            raise ValueError("the range is empty")
        ints = all(isinstance(v, int) for v in (value.start, value.stop, value.step))
        return Dimension(key, "int" if ints else "float", values[0], values[-1], value.step, log)
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        if value.start > value.end:
            raise ValueError(f"interval({value.start}, {value.end}): the low end is above the high end")
        kind = "int" if "int" in tags else "float"
        low, high = (int(value.start), int(value.end)) if kind == "int" else (value.start, value.end)
        return Dimension(key, kind, low, high, None, log)
    raise ValueError("not a search range: use interval(a, b), range(a, b), choice(x, y) or x,y")


def space(search: SearchConfig, cli_sweeps: dict[str, str]) -> list[Dimension]:
    """The preset's params with the command line's sweep values on top (the command line wins)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    problems, dims = [], []
    for key, text in {**search.params, **cli_sweeps}.items():
        where = key if key in cli_sweeps else f"{SEARCH_KEY}.params.{key}"
        try:
            override = parser.parse_override(f"{key}={text}")
            dim = _dimension(key, override.value())
            if dim.log and dim.kind != "choice" and dim.low <= 0:
                raise ValueError(f"a log scale needs a low end above 0 (it is {dim.low})")
        except (HydraException, ValueError) as err:
            problems.append(Problem(where, text, str(err).splitlines()[0], _GRAMMAR))
            continue
        dims.append(dim)
    if not dims and not problems:
        problems.append(Problem(f"{SEARCH_KEY}.params", {}, "the search space is empty", _GRAMMAR))
    if problems:
        raise ConfigError(problems)
    return dims


_GRAMMAR = "write interval(a, b), tag(log, interval(a, b)), range(a, b[, step]) or choice(x, y, ...)"


def split_args(overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line's fixed overrides (every trial gets them) and its sweep values (searched)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    fixed, swept = [], {}
    for text, parsed in zip(overrides, OverridesParser.create().parse_overrides(overrides), strict=True):
        if parsed.is_sweep_override() and not parsed.key_or_group.startswith("hydra"):
            swept[parsed.key_or_group] = text.partition("=")[2]
        else:
            fixed.append(text)
    return fixed, swept


def value_text(value: Any) -> str:
    """A sampled value as an override value (floats in full, so the job gets exactly the trial's)."""
    return repr(value) if isinstance(value, float) else str(value)


def check_search(hydra_args: list[str], line: CommandLine) -> Sweep | None:
    """None when the sweep is not a search; else the search's settings, space and corners validated,
    every problem listed at once (UserError/ConfigError)."""
    from hydra import initialize_config_dir

    from trainer.boundary.compose import compose_one
    from trainer.boundary.conf import CONF_DIR

    composed = parse(hydra_args)
    fixed, swept = split_args(composed.overrides)
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        first, cfg, _ = compose_one(line.config_name, [*fixed, *line.searchpath])
        if not is_search(cfg):
            return None
        search = settings(cfg)
        dims = space(search, swept)
        _check_objective(first, search)
        invalid = _check_corners(line, fixed, dims)
    if invalid:
        more = [f"  ... and {len(invalid) - SHOWN} more"] if len(invalid) > SHOWN else []
        raise UserError(
            f"{len(invalid)} corner(s) of the search space give an invalid config; no trial was started:\n"
            + "\n".join([*invalid[:SHOWN], *more]),
            hint="narrow the ranges named above (hydra.sweeper.params or the command line)",
        )
    folder = os.path.abspath(str(cfg.hydra.sweep.dir))
    return Sweep(search.trials, [d.key for d in dims], folder, first)


def _check_objective(first: Any, search: SearchConfig) -> None:
    if first.trainer.val_every == "disable":
        raise ConfigError(
            [
                Problem(
                    "trainer.val_every",
                    "disable",
                    f"the search's objective {search.metric} is a validation metric",
                    "set trainer.val_every=N or last_step",
                )
            ]
        )


def _check_corners(line: CommandLine, fixed: list[str], dims: list[Dimension]) -> list[str]:
    """Each corner on its own over the fixed overrides, so a problem is named by the value that makes it
    (a bad low end of one range is listed once, not with every value of the others)."""
    from trainer.boundary.compose import compose_one

    invalid = []
    for dim in dims:
        for value in dim.corners():
            job = f"{dim.key}={value_text(value)}"
            try:
                compose_one(line.config_name, [*fixed, job, *line.searchpath])
            except ConfigError as err:
                rendered = "\n".join(f"  {p.render()}" for p in err.problems)
                invalid.append(f"  {job}:\n{rendered}")
            except UserError as err:
                invalid.append(f"  {job}:\n    {err.message}")
    return invalid
