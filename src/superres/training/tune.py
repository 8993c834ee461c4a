"""``superres tune``: a hyperparameter search over real ``superres train`` runs, on Optuna.

An adapter, not a framework: each trial is :func:`superres.training.train` on the base config
with the sampled values applied as ``--set`` overrides, in its own run folder; it reports its
validation PSNR (``metrics.jsonl``'s key, e.g. ``Set5/psnr``) after every validation, and a
pruner stops it early through :class:`PruneOnValidation`. The study lives in a database
(SQLite in the study folder by default, so running the command again continues it; a shared
PostgreSQL/MySQL URL lets several machines work on one study). Optuna is imported only here
and only when a search runs, so the rest of superres never needs it.

A search space is ``KEY=KIND:ARGS`` with the dotted keys of ``--set``: ``log:LOW:HIGH`` and
``float:LOW:HIGH`` (floats, log-uniform or uniform), ``int:LOW:HIGH`` (inclusive) and
``choice:A,B,...`` (values read as YAML, like ``--set``). It comes from ``--search`` or from a
``search:`` mapping in the YAML (the command line wins).
"""

from __future__ import annotations

import copy
import inspect
import math
import multiprocessing
import os
import random
import socket
import sys
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from superres.atomic import atomic_path, write_atomic
from superres.errors import SuperresError
from superres.extras import install_command, require
from superres.options import PNG_SUFFIX
from superres.training.callbacks import ProtocolValidation, read_metrics
from superres.training.config import ConfigError, apply_overrides, load_config, read_config_mapping

__all__ = [
    "TuneError", "SearchParam", "parse_search", "check_overrides", "check_space", "PruneOnValidation", "TuneResult",
    "resumption_note", "tune",
]

_KINDS = ("log", "float", "int", "choice")
# Liveness of a trial's process in the database: a trial whose process stopped beating for
# the grace period (killed, machine lost) is failed and re-enqueued by whoever notices.
_HEARTBEAT_S = 10
_GRACE_S = 60


class TuneError(SuperresError):
    """A search that cannot run as asked (a bad search space, a missing engine); names the key."""


@dataclass(frozen=True)
class SearchParam:
    """One searched key: ``kind`` is log, float, int or choice."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def spec(self) -> str:
        """The ``KIND:ARGS`` text it was parsed from (canonical form)."""
        if self.kind == "choice":
            return "choice:" + ",".join(self.choices)
        return f"{self.kind}:{self.low!r}:{self.high!r}"

    def candidates(self) -> list[str]:
        """``--set`` values to check the key with: both ends of a range, or every choice."""
        return list(self.choices) if self.kind == "choice" else [repr(self.low), repr(self.high)]

    def suggest(self, trial) -> Any:
        """Draw this key's value for an Optuna trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")


def parse_search(item: str) -> SearchParam:
    """Parse ``KEY=KIND:ARGS`` (``optim.lr=log:1e-4:1e-2``, ``model.hyperparameters.d=int:16:64``,
    ``loss.pixel=choice:l1,charbonnier``); a malformed one raises :class:`TuneError` naming the key."""
    if "=" not in item:
        raise TuneError(f"--search expects KEY=KIND:ARGS (e.g. optim.lr=log:1e-4:1e-2), got {item!r}")
    key, text = (part.strip() for part in item.split("=", 1))
    kind, _, args = text.partition(":")
    if not key or kind not in _KINDS:
        raise TuneError(f"--search {key or item!r}: kind must be one of {', '.join(_KINDS)} (got {text!r})")
    if kind == "choice":
        choices = tuple(c.strip() for c in args.split(","))
        if len(choices) < 2 or not all(choices) or len(set(choices)) != len(choices):
            raise TuneError(f"--search {key}: choice needs two or more distinct values, as choice:A,B (got {text!r})")
        return SearchParam(key, kind, choices=choices)
    bounds = args.split(":")
    try:
        if len(bounds) != 2:
            raise ValueError
        low, high = (int(b) for b in bounds) if kind == "int" else (float(b) for b in bounds)
    except ValueError:
        number = "integers" if kind == "int" else "numbers"
        raise TuneError(f"--search {key}: {kind} needs two {number}, as {kind}:LOW:HIGH (got {text!r})") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise TuneError(f"--search {key}: the range must have LOW < HIGH (got {text!r})")
    if kind == "log" and low <= 0:
        raise TuneError(f"--search {key}: a log range must be positive (got {text!r})")
    return SearchParam(key, kind, low, high)


def check_space(raw: dict, overrides: Sequence[str], params: Sequence[SearchParam], source: str = "config") -> None:
    """Check every searched key the way ``--set`` is checked: the config must validate, and the
    model must build, at both ends of each range and with each choice. Raises :class:`TuneError`."""
    from superres.models import create

    if not params:
        raise TuneError("nothing to search: give --search KEY=KIND:ARGS or a 'search:' section in the config")
    keys = [p.key for p in params]
    if len(set(keys)) != len(keys):
        raise TuneError(f"--search names a key twice: {sorted({k for k in keys if keys.count(k) > 1})}")
    for p in params:
        for value in p.candidates():
            try:
                config = load_config(raw, [*overrides, f"{p.key}={value}"])
            except ConfigError as exc:
                raise TuneError(f"--search {p.key}={value}: {str(exc).removeprefix(source + ': ')}") from None
            if p.key.startswith("model."):
                try:  # model.hyperparameters is free-form in the config; the constructor decides.
                    create(config.model.name, scale=config.model.scale, **config.model.hyperparameters)
                except (TypeError, ValueError, SuperresError) as exc:
                    raise TuneError(f"--search {p.key}={value}: {exc}") from None


class PruneOnValidation(L.Callback):
    """Report each validation score to an Optuna trial and stop training when its pruner says
    so. Listed after :class:`ProtocolValidation` (``train(..., callbacks=[...])``), it reads the
    score that callback has just written. Stopping, not raising, keeps the run's last
    checkpoint and metrics intact; the caller turns :attr:`pruned` into ``TrialPruned``."""

    def __init__(self, trial, metric: str):
        self.trial = trial
        self.metric = metric
        self.pruned = False
        self._reported = -1

    def _check(self, trainer, module) -> None:
        validation = next((c for c in trainer.callbacks if isinstance(c, ProtocolValidation)), None)
        if validation is None or validation.scored_at != module.iteration or module.iteration == self._reported:
            return
        self._reported = module.iteration
        value = validation.last.get(self.metric)
        if value is None:
            raise TuneError(f"validation wrote no '{self.metric}' (it has {sorted(validation.last)}); pick one with --metric")
        self.trial.report(value, step=module.iteration)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._check(trainer, module)

    def on_train_end(self, trainer, module):
        self._check(trainer, module)


@dataclass
class _Spec:
    """Everything a search process needs (picklable, for --n-jobs worker processes)."""

    raw: dict
    overrides: list[str]
    params: list[SearchParam]
    metric: str
    study: str
    storage: str
    directory: str
    pruner: str
    startup_trials: int
    seed: int | None
    trials: int
    timeout: float | None
    local: bool = True  # the default SQLite file in the study folder, guarded by a lock
    parallel: bool = False  # other processes may run trials of the study at the same time


@dataclass
class TuneResult:
    """What a search left in its folder: the best trial and the files written."""

    directory: Path
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_config: Path | None
    table: str
    counts: dict[str, int]
    pictures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline_value: float | None = None  # the config's own point (``baseline=True``), once it completed


def _optuna():
    optuna = require("optuna", extra="tune", purpose="superres tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _storage(spec: _Spec):
    optuna = _optuna()
    engine_kwargs = {"connect_args": {"timeout": 60}} if spec.storage.startswith("sqlite") else None  # waits, not "database is locked", when workers write at once
    # Optuna 4.9 renamed the stale-trial hook; 3.4 (the oldest supported) has only the old name.
    hook = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters else "failed_trial_callback"
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the heartbeat, since 2.9
                return optuna.storages.RDBStorage(
                    spec.storage, engine_kwargs=engine_kwargs, heartbeat_interval=_HEARTBEAT_S, grace_period=_GRACE_S,
                    **{hook: _enqueue_resume},
                )
        except ImportError as exc:
            driver = getattr(exc.__cause__, "name", None) or exc.__cause__ or exc
            raise TuneError(f"--storage {spec.storage.split(':', 1)[0]}://...: no database driver ({driver}); for PostgreSQL "
                            f"{install_command('tune-postgres')} and write postgresql+psycopg://...") from None
        except (IntegrityError, ProgrammingError):
            # Processes starting on an empty shared database all create Optuna's tables at
            # once and all but one lose the race (PostgreSQL: a duplicate key in pg_type);
            # the tables exist when they try again.
            if attempt == 4:
                raise
            time.sleep(0.5 + random.random())


def baseline_params(params: Sequence[SearchParam], config) -> dict[str, Any]:
    """The values ``config`` itself gives the searched keys (a model hyperparameter the YAML
    leaves out takes the model's default): the hand-written point a search is judged against.
    A value outside its key's range is an error naming it."""
    from superres.models.registry import default_hyperparameters

    dumped = config.model_dump()
    defaults = default_hyperparameters(config.model.name)
    values: dict[str, Any] = {}
    for param in params:
        parts = param.key.split(".")
        if parts[:2] == ["model", "hyperparameters"] and len(parts) == 3:
            value = config.model.hyperparameters.get(parts[2], defaults.get(parts[2]))
        else:
            value = dumped
            for part in parts:
                value = value.get(part) if isinstance(value, dict) else None
        inside = (str(value) in param.choices) if param.kind == "choice" else (
            isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high)
        if value is None or not inside:
            raise TuneError(f"--baseline: the config gives {param.key} = {value!r}, outside its search range {param.spec()}")
        values[param.key] = str(value) if param.kind == "choice" else (int(value) if param.kind == "int" else float(value))
    return values


def check_overrides(overrides: Sequence[str]) -> None:
    """Refuse ``--set`` items that a search sets itself, per trial: ``output_dir`` (each
    trial's run folder is made under the study folder, where its scores are read back; one
    folder for every trial made trial 0's scores unfindable and every later trial fail)."""
    for item in overrides:
        if item.split("=", 1)[0].strip() == "output_dir":
            raise TuneError("--set output_dir is not taken by tune: every trial runs in its own folder under the study "
                            "folder; choose that folder with --dir DIR")


def resumption_note(study, resumed: Sequence[int]) -> str:
    """One line saying what became of the interrupted trials ``resumed`` that were queued
    to resume when the search started: resumed as which trial, and how it ended."""
    optuna = _optuna()
    latest: dict[int, Any] = {}
    for t in study.get_trials(deepcopy=False):
        if "resume_of" in t.user_attrs:
            latest[t.user_attrs["resume_of"]] = t  # in number order: the last resumption wins
    parts = []
    for number in resumed:
        t = latest.get(number)
        if t is None or t.state == optuna.trial.TrialState.WAITING:
            parts.append(f"{number} still waiting to resume (run the command again)")
        elif t.state == optuna.trial.TrialState.RUNNING:
            parts.append(f"{number} resuming as trial {t.number} in another process")
        elif t.state == optuna.trial.TrialState.COMPLETE:
            parts.append(f"{number} resumed as trial {t.number}, complete ({t.value:.4f})")
        else:
            parts.append(f"{number} resumed as trial {t.number}, {t.state.name.lower()}")
    return f"interrupted trial(s): {'; '.join(parts)}"


def _enqueue_resume(study, trial) -> None:
    """Queue a trial that died running (process killed, Ctrl-C) to run again with its
    parameters, continuing its run folder from the last checkpoint; once per dead trial."""
    if any(t.user_attrs.get("resume_of") == trial.number for t in study.get_trials(deepcopy=False)):
        return
    attrs = {"resume_of": trial.number, "resume_dir": trial.user_attrs.get("run_dir")}
    if trial.user_attrs.get("baseline"):
        attrs["baseline"] = True
    study.enqueue_trial(trial.params, user_attrs=attrs)


def _recover(study, storage) -> list[int]:
    """With the study folder locked no other process runs its trials, so every RUNNING trial
    is left over from a killed search: fail it and queue its resumption now rather than after
    the heartbeat's grace period (and that of trials stopped by Ctrl-C). Returns the numbers
    of the trials whose resumption waits to run."""
    optuna = _optuna()
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in stale:
        storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number), optuna.trial.TrialState.FAIL)
    interrupted = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)) if t.user_attrs.get("interrupted")]
    for trial in [*stale, *interrupted]:
        _enqueue_resume(study, trial)
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    return sorted(t.user_attrs["resume_of"] for t in waiting if "resume_of" in t.user_attrs)


def _sampler(spec: _Spec, offset: int):
    optuna = _optuna()
    # A resumed search must not replay the random start-up draws of the first run: the seed
    # moves on with the number of trials already in the study (and with the worker).
    seed = None if spec.seed is None else spec.seed + offset
    if seed is not None and not spec.local:
        # Processes on a shared database all see the same number of trials when they start
        # together, so the seed also takes the process's identity: two machines given the same
        # --seed would otherwise draw the same values (found by the PostgreSQL test).
        seed += zlib.crc32(_process().encode())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # constant_liar, since 2.8
        # constant_liar: trials running elsewhere count as poor ones, so parallel workers do not
        # all crowd the same promising spot (Optuna's advice for distributed searches).
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials, constant_liar=spec.parallel)


def _process() -> str:
    """``host:pid``, the process that ran a trial (a user attribute of every trial)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pruner(spec: _Spec):
    optuna = _optuna()
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=0)
    if spec.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def _finished(study) -> int:
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _run_dir(spec: _Spec, number: int) -> Path:
    return Path(spec.directory) / f"trial_{number:04d}"


def _trial_overrides(spec: _Spec, params: dict[str, Any]) -> list[str]:
    # repr keeps a float exact and YAML-readable (1e-05, 0.0003); choices are already text.
    return [*spec.overrides, *(f"{k}={v if isinstance(v, str) else repr(v)}" for k, v in params.items())]


def _scores(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(iteration, score) of every validation in a run's ``metrics.jsonl``, first score of a step kept."""
    scores: dict[int, float] = {}
    for record in read_metrics(run_dir):
        if metric in record:
            scores.setdefault(record["iteration"], record[metric])
    return sorted(scores.items())


def _last_score(run_dir: Path, metric: str) -> float | None:
    scores = _scores(run_dir, metric)
    return scores[-1][1] if scores else None


def _objective(spec: _Spec):
    from superres.training.run import train

    optuna = _optuna()

    def objective(trial) -> float:
        params = {p.key: p.suggest(trial) for p in spec.params}
        resume_of, resume_dir = trial.user_attrs.get("resume_of"), trial.user_attrs.get("resume_dir")
        run_dir = _run_dir(spec, trial.number)
        resume = False
        if resume_dir and (Path(resume_dir) / "checkpoints" / "last.ckpt").is_file():
            run_dir, resume = Path(resume_dir), True
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("process", _process())
        raw = copy.deepcopy(spec.raw)
        raw["output_dir"] = str(run_dir)
        config = load_config(raw, _trial_overrides(spec, params))
        print(f"trial {trial.number}: {' '.join(f'{k}={_format_value(v)}' for k, v in params.items())}"
              + (f" (resuming trial {resume_of} in {run_dir})" if resume else f" in {run_dir}"), flush=True)
        pruning = PruneOnValidation(trial, spec.metric)
        if resume:
            # The dead trial's scores so far become this one's, so the pruner compares whole
            # curves: a resumed trial would otherwise report nothing before its checkpoint.
            for step, value in _scores(run_dir, spec.metric):
                trial.report(value, step=step)
        try:
            train(config, resume=resume, callbacks=[pruning])
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # Optuna fails it; the next run resumes it
            raise
        value = _last_score(run_dir, spec.metric)
        if pruning.pruned:
            raise optuna.TrialPruned(f"{spec.metric} {value} at iteration {pruning._reported}")
        if value is None:
            raise TuneError(f"trial {trial.number} wrote no '{spec.metric}' to {run_dir / 'metrics.jsonl'}")
        print(f"trial {trial.number}: {spec.metric} {value:.4f}", flush=True)
        return value

    return objective


def _optimize(spec: _Spec, worker: int = 0) -> None:
    """One search process: run trials until the study holds ``spec.trials`` finished ones."""
    optuna = _optuna()
    storage = _storage(spec)
    sampler_offset = len(optuna.load_study(study_name=spec.study, storage=storage).trials) + 7919 * worker
    study = optuna.load_study(study_name=spec.study, storage=storage, sampler=_sampler(spec, sampler_offset), pruner=_pruner(spec))
    remaining = spec.trials - _finished(study)
    if remaining <= 0:
        return
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        # n_trials bounds this process's attempts (failures included, so a broken config
        # cannot loop); MaxTrialsCallback stops it once all workers together have enough.
        study.optimize(
            _objective(spec), n_trials=remaining, timeout=spec.timeout, catch=(SuperresError,),
            callbacks=[optuna.study.MaxTrialsCallback(spec.trials, states=finished)], gc_after_trial=True,
        )


def _worker(spec: _Spec, worker: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        # A killed `superres tune` must not leave workers running trials: the next run would
        # take their trials for interrupted ones and run them twice. SIGTERM lets Lightning
        # save the trial's checkpoint first.
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    _optimize(spec, worker)


def _format_value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(study, spec: _Spec) -> str:
    keys = [p.key for p in spec.params]
    header = ["trial", "state", spec.metric, "iterations", *keys, "run"]
    rows = []
    for t in study.get_trials(deepcopy=False):
        steps = max(t.intermediate_values) if t.intermediate_values else ""
        value = f"{t.value:.4f}" if t.value is not None else (f"({t.intermediate_values[steps]:.4f})" if steps != "" else "")
        state = t.state.name.lower() + (" (baseline)" if t.user_attrs.get("baseline") else "")
        rows.append([str(t.number), state, value, str(steps), *(_format_value(t.params.get(k, "")) for k in keys),
                     Path(t.user_attrs.get("run_dir", "")).name])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _write_best(study, spec: _Spec, source: str) -> Path:
    best = study.best_trial
    raw = apply_overrides(copy.deepcopy(spec.raw), _trial_overrides(spec, best.params))
    raw["output_dir"] = str(Path(spec.directory) / "best")
    load_config(raw)  # what is written must train
    header = (f"# The best trial ({best.number}, {spec.metric} {best.value:.4f}) of study '{spec.study}' "
              f"({_finished(study)} trials), from {source}.\n# Train it: superres train {Path(spec.directory) / 'best.yaml'}\n")
    path = Path(spec.directory) / "best.yaml"
    write_atomic(path, (header + yaml.safe_dump(raw, sort_keys=False)).encode())
    return path


def _pictures(study, directory: Path, notes: list[str], metric: str) -> list[Path]:
    matplotlib = require("matplotlib", extra="plot", purpose="the search's pictures")
    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    optuna = _optuna()
    from optuna.visualization import matplotlib as vis

    written = []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    # Optuna's own titles and axes say "Objective Value"; ours name what was maximised.
    plots = [
        ("history.png", vis.plot_optimization_history, 1, f"{metric} of each complete trial, and the best so far", metric),
        ("importances.png", vis.plot_param_importances, 2, f"What moved {metric} (fANOVA importance; sums to 1)", None),
    ]
    for name, plot, needed, title, ylabel in plots:
        if len(complete) < needed:
            notes.append(f"{name} not drawn: it needs {needed} complete trials, the study has {len(complete)}")
            continue
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            axes = plot(study)
        for where in ("left", "center", "right"):  # optuna puts its titles in either place
            axes.set_title("", loc=where)
        axes.set_title(title, fontsize=10, loc="left")
        if ylabel:
            axes.set_ylabel(ylabel)
        legend = axes.get_legend()
        if legend is not None and name == "importances.png":
            legend.remove()  # one series: its legend ("Objective Value") says nothing
        elif legend is not None:
            for text in legend.get_texts():
                text.set_text(text.get_text().replace("Objective Value", metric))
        figure = axes.get_figure()
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        with atomic_path(directory / name, suffix=PNG_SUFFIX) as temp:
            figure.savefig(temp, dpi=100)
        plt.close(figure)
        written.append(directory / name)
    return written


def _check_search_options(trials: int, n_jobs: int, pruner: str) -> None:
    if trials < 1 or n_jobs < 1:
        raise TuneError("--trials and --n-jobs must be at least 1")
    if pruner not in ("median", "halving", "none"):
        raise TuneError(f"--pruner must be median, halving or none (got {pruner!r})")


def _search_params(path: Path, from_yaml: Any, search: Sequence[str]) -> list[SearchParam]:
    """The searched keys: the YAML's ``search:`` mapping, then ``--search`` items (which win)."""
    if not isinstance(from_yaml, dict):
        raise TuneError(f"{path}: 'search' must map keys to KIND:ARGS, e.g. optim.lr: log:1e-4:1e-2")
    params_by_key = {p.key: p for p in (parse_search(f"{k}={v}") for k, v in from_yaml.items())}
    params_by_key.update({p.key: p for p in map(parse_search, search)})
    return list(params_by_key.values())


def _lock_study(folder: Path):
    """The open lock file of a local study's folder: one ``superres tune`` at a time runs it."""
    import fcntl  # POSIX; imported here so that the module itself imports anywhere

    lock = open(folder / "tune.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TuneError(f"another superres tune is running the study in '{folder}'; use --n-jobs for parallel trials, "
                        "or --storage with a shared database for several processes") from None
    return lock


def _open_study(spec: _Spec, baseline_values: dict[str, Any] | None) -> list[int]:
    """Create the study, or check that the stored one searches the same space by the same
    metric; queue the baseline trial once and, in a local study, the resumption of
    interrupted trials. Returns the numbers of the trials queued to resume."""
    optuna = _optuna()
    space = {p.key: p.spec() for p in spec.params}
    db = _storage(spec)
    created = optuna.create_study(study_name=spec.study, storage=db, direction="maximize", load_if_exists=True)
    stored = created.user_attrs
    if not stored:
        created.set_user_attr("space", space)
        created.set_user_attr("metric", spec.metric)
        created.set_user_attr("overrides", spec.overrides)
    elif stored.get("space") != space or stored.get("metric") != spec.metric:
        raise TuneError(f"study '{spec.study}' searches {stored.get('space')} scored by {stored.get('metric')}, not "
                        f"{space} by {spec.metric}; give another --study to start a new one")
    if baseline_values is not None and not any(t.user_attrs.get("baseline") for t in created.get_trials(deepcopy=False)):
        created.enqueue_trial(baseline_values, user_attrs={"baseline": True})
    resumed: list[int] = []
    if spec.local:
        resumed = _recover(created, db)
        if resumed:
            print(f"superres: interrupted trial(s) {resumed} queued to resume from their checkpoints", file=sys.stderr, flush=True)
    done = _finished(created)
    if done:
        print(f"superres: study '{spec.study}' has {done} finished trial(s); running until {spec.trials}", flush=True)
    return resumed


def _run_trials(spec: _Spec, n_jobs: int) -> None:
    """Run the search in this process, or in ``n_jobs`` worker processes at once."""
    if n_jobs == 1:
        _optimize(spec)
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch threads
    workers = [context.Process(target=_worker, args=(spec, i)) for i in range(n_jobs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def tune(
    config: str | os.PathLike,
    *,
    trials: int,
    search: Sequence[str] = (),
    overrides: Sequence[str] = (),
    study: str | None = None,
    storage: str | None = None,
    directory: str | os.PathLike | None = None,
    timeout: float | None = None,
    n_jobs: int = 1,
    pruner: str = "median",
    startup_trials: int = 5,
    metric: str | None = None,
    seed: int | None = None,
    baseline: bool = False,
) -> TuneResult:
    """Search ``config``'s hyperparameters until the study holds ``trials`` finished (complete
    or pruned) trials, then write ``best.yaml``, ``trials.md`` and the PNGs to the study folder.

    ``search`` holds ``KEY=KIND:ARGS`` items (added to the YAML's ``search:`` section);
    ``overrides`` are ``--set`` items applied to every trial (a short schedule). The study
    folder is ``directory`` (default ``runs/tune/<study>``, ``study`` defaulting to the
    config's name); the database is ``storage`` (default SQLite ``study.db`` in that folder).
    Running again with the same folder continues the study: finished trials stay, trials a
    kill interrupted are resumed from their checkpoints. ``n_jobs`` runs that many trial
    processes at once; ``timeout`` (seconds) stops starting new trials after that long.
    ``baseline`` queues the config's own values as the study's first trial (Optuna's
    ``enqueue_trial``), so that the hand-written recipe is scored in the same study, on the
    same schedule, as the trials that try to beat it.
    """
    optuna = _optuna()
    _check_search_options(trials, n_jobs, pruner)
    path = Path(config)
    raw = read_config_mapping(path)
    params = _search_params(path, raw.pop("search", None) or {}, search)
    overrides = list(overrides)
    check_overrides(overrides)
    check_space(raw, overrides, params, source=str(path))
    base = load_config(raw, overrides)
    if not base.val.folders:
        raise TuneError(f"{path}: val.folders is empty; a search needs a validation set to score trials")
    baseline_values = baseline_params(params, base) if baseline else None
    if metric is None:
        metric = base.val.set_name(base.val.folders[0]) + "/psnr"
    study = study or path.stem
    folder = Path(directory) if directory is not None else Path("runs") / "tune" / study
    folder.mkdir(parents=True, exist_ok=True)
    local = storage is None
    storage = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    spec = _Spec(raw=raw, overrides=overrides, params=params, metric=metric, study=study, storage=storage, directory=str(folder),
                 pruner=pruner, startup_trials=startup_trials, seed=seed, trials=trials, timeout=timeout, local=local,
                 parallel=n_jobs > 1 or not local)

    lock = _lock_study(folder) if local else None
    try:
        resumed = _open_study(spec, baseline_values)
        _run_trials(spec, n_jobs)
        result_study = optuna.load_study(study_name=study, storage=_storage(spec))
        notes = [resumption_note(result_study, resumed)] if local and resumed else []
        return _report(result_study, spec, path, notes)
    finally:
        if lock is not None:
            lock.close()


def _report(study, spec: _Spec, source: Path, notes: list[str]) -> TuneResult:
    optuna = _optuna()
    folder = Path(spec.directory)
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    table = _table(study, spec)
    write_atomic(folder / "trials.md", f"# Study '{spec.study}' ({spec.metric}, higher is better)\n\n{table}\n".encode())
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = study.best_trial if complete else None
    best_config = _write_best(study, spec, str(source)) if best else None
    pictures = _pictures(study, folder, notes, spec.metric)
    baseline = next((t.value for t in complete if t.user_attrs.get("baseline")), None)
    return TuneResult(
        directory=folder, best_trial=best.number if best else None, best_value=best.value if best else None,
        best_params=dict(best.params) if best else {}, best_config=best_config, table=table, counts=counts,
        pictures=pictures, notes=notes, baseline_value=baseline,
    )
