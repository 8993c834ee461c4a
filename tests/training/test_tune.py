"""``superres tune``: a tiny real search (3 trials of FSRCNN-s, a few dozen steps) prunes, writes a
best YAML that trains, and resumes after SIGKILL without repeating a finished trial; the
search space is checked like ``--set``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna", reason="superres tune needs optuna: pip install -e '.[tune]'")

from superres.cli import main  # noqa: E402
from superres.training import load_config  # noqa: E402
from superres.training.tune import TuneError, baseline_params, check_space, parse_search, tune  # noqa: E402

SUPERRES = [sys.executable, "-m", "superres"]


@pytest.fixture(scope="module")
def photos(train_hr, tmp_path_factory) -> Path:
    """Four of the shared training photos, copied."""
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted(train_hr.glob("sunhays80-*.png"))[:4]:
        shutil.copy(path, folder / path.name)
    return folder


def _config(tmp_path: Path, photos: Path, set5: Path, **search) -> Path:
    raw = {
        "output_dir": str(tmp_path / "unused"),
        "model": {"name": "fsrcnn-s", "scale": 2},
        "data": {"train": [str(photos)], "patch_size": 32, "batch_size": 4},
        "val": {"folders": [str(set5)], "every_n_steps": 10, "max_images": 2},
        "optim": {"lr": 1.0e-3, "warmup_steps": 0, "ema_decay": None},
        "trainer": {"max_steps": 30, "checkpoint_every": 10, "threads": 1, "log_every": 10},
    }
    if search:
        raw["search"] = search
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _trials(folder: Path, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}").get_trials()


@pytest.mark.slow
def test_search_prunes_and_its_best_yaml_trains(tmp_path, photos, set5, capsys):
    config = _config(tmp_path, photos, set5, **{"optim.lr": "log:1e-5:1e-2"})
    study = tmp_path / "study"
    # Seed 0 draws a trial worse than the first at its first validation, which the median
    # pruner (active after one trial) stops there.
    result = tune(config, trials=3, search=["model.hyperparameters.d=int:8:32"], directory=study, startup_trials=1, seed=0)
    states = [t.state for t in _trials(study, "tiny")]
    assert len(states) == 3 and optuna.trial.TrialState.PRUNED in states, result.table
    pruned = next(t for t in _trials(study, "tiny") if t.state == optuna.trial.TrialState.PRUNED)
    stopped_at = json.loads((study / f"trial_{pruned.number:04d}" / "metrics.jsonl").read_text().splitlines()[-1])["iteration"]
    assert stopped_at < 30  # pruned runs stop training, not just get marked
    assert result.best_value == max(t.value for t in _trials(study, "tiny") if t.value is not None and t.state.name == "COMPLETE")
    for name in ("trials.md", "history.png", "best.yaml"):
        assert (study / name).stat().st_size > 0, name
    assert "| pruned |" in (study / "trials.md").read_text()
    # The best YAML is the base config with the best values: it trains as it is.
    best = load_config(result.best_config)
    assert best.optim.lr == pytest.approx(result.best_params["optim.lr"])
    assert best.model.hyperparameters["d"] == result.best_params["model.hyperparameters.d"]
    capsys.readouterr()
    assert main(["train", str(result.best_config), "--set", "trainer.max_steps=10"]) == 0
    assert (study / "best" / "model.safetensors").is_file()


@pytest.mark.slow
def test_killed_search_resumes_without_repeating_a_finished_trial(tmp_path, photos, set5, capsys):
    config = _config(tmp_path, photos, set5, **{"optim.lr": "log:1e-4:1e-2"})
    study = tmp_path / "study"
    command = [*SUPERRES, "tune", str(config), "--trials", "3", "--dir", str(study), "--pruner", "none", "--seed", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first_done = study / "trial_0000" / "model.safetensors"
    second_ckpt = study / "trial_0001" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not second_ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first_done.exists() and second_ckpt.exists(), "the search did not reach trial 1 before the kill"
    before = {t.number: (t.state, t.value) for t in _trials(study, "tiny")}
    assert before[0][0] == optuna.trial.TrialState.COMPLETE and before[1][0] == optuna.trial.TrialState.RUNNING
    finished_weights = first_done.stat().st_mtime_ns

    capsys.readouterr()
    assert main(["tune", str(config), "--trials", "3", "--dir", str(study), "--pruner", "none", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert "interrupted trial(s) [1] queued to resume" in captured.err
    # The last word says what happened to it, not that it is still queued.
    assert captured.err.strip().splitlines()[-1].startswith("superres: interrupted trial(s): 1 resumed as trial 2, complete")
    after = _trials(study, "tiny")
    complete = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    assert after[0].value == before[0][1] and first_done.stat().st_mtime_ns == finished_weights  # not run again
    assert after[1].state == optuna.trial.TrialState.FAIL  # the killed one, replaced by its resumption
    resumed = next(t for t in after if t.user_attrs.get("resume_of") == 1)
    assert resumed.params == after[1].params and resumed.user_attrs["run_dir"] == str(study / "trial_0001")
    # It carries the killed trial's scores, so the pruner sees its whole curve.
    assert set(after[1].intermediate_values) <= set(resumed.intermediate_values) and 30 in resumed.intermediate_values
    assert "resuming at iteration" in captured.out
    runs = [t.user_attrs["run_dir"] for t in complete]
    assert len(set(runs)) == 3
    # Running it again with the study complete trains nothing.
    assert main(["tune", str(config), "--trials", "3", "--dir", str(study), "--pruner", "none"]) == 0
    assert len(_trials(study, "tiny")) == len(after)
    # The study keeps its search space: another one under the same name is refused.
    with pytest.raises(TuneError, match="give another --study"):
        tune(config, trials=4, search=["optim.lr=log:1e-3:1e-2"], directory=study)


@pytest.mark.parametrize(
    "item, message",
    [
        ("optim.lr", "expects KEY=KIND:ARGS"),
        ("optim.lr=uniform:1:2", "kind must be one of"),
        ("optim.lr=log:0:1e-2", "log range must be positive"),
        ("optim.lr=log:1e-2:1e-4", "LOW < HIGH"),
        ("optim.lr=float:a:b", "two numbers"),
        ("model.hyperparameters.d=int:8:24.5", "two integers"),
        ("loss.pixel=choice:l1", "two or more distinct"),
    ],
)
def test_bad_search_spec_names_the_key(item, message):
    with pytest.raises(TuneError, match=message) as info:
        parse_search(item)
    assert item.split("=")[0] in str(info.value)


def test_search_keys_are_checked_like_set():
    raw = {"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}}
    ok = [parse_search("optim.lr=log:1e-4:1e-2"), parse_search("model.hyperparameters.d=int:16:64"), parse_search("loss.pixel=choice:l1,charbonnier")]
    check_space(raw, [], ok)
    for item, message in [
        ("optim.lrr=log:1e-4:1e-2", "unknown key 'optim.lrr'"),
        ("loss.pixel=choice:l1,l3", "'loss.pixel'"),
        ("data.patch_size=int:31:64", "multiple of model.scale"),
        ("model.hyperparameters.width=int:8:16", "model.hyperparameters.width"),
    ]:
        with pytest.raises(TuneError, match=message.replace(".", r"\.")):
            check_space(raw, [], [parse_search(item)])
    with pytest.raises(TuneError, match="names a key twice"):
        check_space(raw, [], [ok[0], ok[0]])


def test_baseline_is_the_configs_own_point():
    config = load_config({"model": {"name": "fsrcnn", "scale": 2, "hyperparameters": {"s": 16}}, "data": {"train": ["x"]},
                          "optim": {"lr": 3.0e-3}, "loss": {"pixel": "charbonnier"}})
    space = [parse_search(i) for i in ("optim.lr=log:1e-4:1e-2", "model.hyperparameters.d=int:16:128",
                                       "model.hyperparameters.s=int:8:32", "loss.pixel=choice:l1,charbonnier")]
    # d is left to the model's default (56); s is the YAML's.
    assert baseline_params(space, config) == {"optim.lr": 3.0e-3, "model.hyperparameters.d": 56,
                                              "model.hyperparameters.s": 16, "loss.pixel": "charbonnier"}
    with pytest.raises(TuneError, match=r"model\.hyperparameters\.d = 56, outside its search range int:64:128"):
        baseline_params([parse_search("model.hyperparameters.d=int:64:128")], config)


@pytest.mark.slow
def test_baseline_runs_first_and_is_marked(tmp_path, photos, set5, capsys):
    config = _config(tmp_path, photos, set5)
    study = tmp_path / "study"
    capsys.readouterr()
    assert main(["tune", str(config), "--trials", "2", "--search", "optim.lr=log:1e-4:1e-2", "model.hyperparameters.d=int:8:64",
                 "--set", "trainer.max_steps=10", "--dir", str(study), "--pruner", "none", "--seed", "0", "--baseline"]) == 0
    trials = _trials(study, "tiny")
    assert trials[0].params == {"optim.lr": 1.0e-3, "model.hyperparameters.d": 32}  # FSRCNN-s: d = 32 and trials[0].user_attrs["baseline"]
    assert trials[1].params != trials[0].params and not trials[1].user_attrs.get("baseline")
    assert "| 0 | complete (baseline) |" in (study / "trials.md").read_text()
    assert f"baseline (the config's own values): {trials[0].value:.4f}" in capsys.readouterr().out
    # Continuing the study does not queue the baseline again.
    assert main(["tune", str(config), "--trials", "3", "--search", "optim.lr=log:1e-4:1e-2", "model.hyperparameters.d=int:8:64",
                 "--set", "trainer.max_steps=10", "--dir", str(study), "--pruner", "none", "--seed", "0", "--baseline"]) == 0
    assert sum(bool(t.user_attrs.get("baseline")) for t in _trials(study, "tiny")) == 1


def test_cli_reports_a_bad_search_in_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}, "val": {"folders": ["y"]}}))
    assert main(["tune", str(config), "--trials", "2", "--search", "optim.lrr=log:1e-4:1e-2", "--dir", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "optim.lrr" in err
    config.write_text(yaml.safe_dump({"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}}))
    assert main(["tune", str(config), "--trials", "2", "--search", "optim.lr=log:1e-4:1e-2", "--dir", str(tmp_path / "s")]) == 1
    assert "val.folders" in capsys.readouterr().err


def _overlap(trials) -> bool:
    """Whether two of the trials ran at the same time (start to end)."""
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def _check_no_repeats(trials) -> None:
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    draws = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(draws)) == len(draws), f"a parameter set ran twice: {draws}"
    runs = [t.user_attrs["run_dir"] for t in trials]
    assert len(set(runs)) == len(runs) and all((Path(r) / "model.safetensors").is_file() for r in runs)


@pytest.mark.slow
def test_n_jobs_runs_trials_in_parallel_processes(tmp_path, photos, set5):
    config = _config(tmp_path, photos, set5, **{"optim.lr": "log:1e-4:1e-2"})
    study = tmp_path / "study"
    # Two trials for two workers: each takes one at once, so they must overlap.
    result = tune(config, trials=2, n_jobs=2, directory=study, pruner="none", seed=0, overrides=["trainer.max_steps=10"])
    trials = _trials(study, "tiny")
    # Each worker checks the count when its trial ends, so it may finish one more (n_jobs - 1).
    assert 2 <= len(trials) <= 3, result.table
    _check_no_repeats(trials)
    processes = {t.user_attrs["process"] for t in trials}
    assert len(processes) == 2 and os.getpid() not in {int(p.rsplit(":", 1)[1]) for p in processes}
    assert _overlap(trials), [(t.number, t.datetime_start, t.datetime_complete) for t in trials]


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server (the binaries bundled by pgserver) in a temp folder; its URL."""
    pgserver = pytest.importorskip("pgserver", reason="needs pgserver and psycopg: pip install -e '.[tune-postgres]'")
    pytest.importorskip("psycopg", reason="needs psycopg: pip install -e '.[tune-postgres]'")
    folder = tempfile.mkdtemp(prefix="superres-pg-")  # short: the server's socket lives there
    server = pgserver.get_server(folder, cleanup_mode="delete")
    # Name the driver: SQLAlchemy 2.0 reads a bare postgresql:// as psycopg2, 2.1 as psycopg 3.
    yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    server.cleanup()


@pytest.mark.slow
def test_two_processes_share_one_study_on_postgresql(tmp_path, photos, set5, postgres):
    config = _config(tmp_path, photos, set5, **{"optim.lr": "log:1e-4:1e-2"})
    # Same --study, --storage and --seed, as one would start it on two machines; a folder each.
    def command(folder: str) -> list[str]:
        return [*SUPERRES, "tune", str(config), "--trials", "4", "--study", "shared", "--storage", postgres,
                "--dir", str(tmp_path / folder), "--pruner", "none", "--seed", "0", "--set", "trainer.max_steps=20"]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = {name: subprocess.Popen(command(name), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in "ab"}
    outputs = {name: proc.communicate(timeout=240)[0] for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, outputs[name]
    trials = optuna.load_study(study_name="shared", storage=postgres).get_trials()
    # Each process checks the count when its trial ends, so together they may finish one more.
    assert 4 <= len(trials) <= 5, outputs
    _check_no_repeats(trials)
    by_folder = {name: {t.number for t in trials if Path(t.user_attrs["run_dir"]).parent == tmp_path / name} for name in "ab"}
    assert by_folder["a"] and by_folder["b"], f"one process ran every trial: {by_folder}"
    assert by_folder["a"] | by_folder["b"] == {t.number for t in trials} and not by_folder["a"] & by_folder["b"]
    assert len({t.user_attrs["process"] for t in trials}) == 2
    assert _overlap(trials)
    for name in "ab":  # each wrote its report when it ended; the other may still have run the overshoot trial
        assert (tmp_path / name / "best.yaml").is_file() and (tmp_path / name / "trials.md").read_text().count("| complete |") >= 4
    # A third run of the same command finds the study complete and trains nothing.
    again = subprocess.run(command("a"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert again.returncode == 0, again.stdout
    assert f"has {len(trials)} finished trial(s)" in again.stdout
    assert len(optuna.load_study(study_name="shared", storage=postgres).get_trials()) == len(trials)


def test_a_database_without_its_driver_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("sqlalchemy")
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed here; the test needs a driver that is missing")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}, "val": {"folders": ["y"]}}))
    args = ["tune", str(config), "--trials", "2", "--search", "optim.lr=log:1e-4:1e-2", "--storage", "mysql://u@localhost/db", "--dir", str(tmp_path / "s")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no database driver (MySQLdb)" in err


def test_set_output_dir_is_refused_in_one_line_pointing_to_dir(tmp_path, capsys):
    """Issue 32, item 4: `--set output_dir=X` (as `train` takes it) sent every trial into X."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}, "val": {"folders": ["y"]}}))
    assert main(["tune", str(config), "--trials", "2", "--search", "optim.lr=log:1e-4:1e-2", "--set", "output_dir=X",
                 "--dir", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--set output_dir is not taken by tune" in err and "--dir DIR" in err
    assert not (tmp_path / "s").exists() and not Path("X").exists()


def test_the_resumption_note_says_what_happened():
    """Issue 32, item 4: after a resumed study completes, the note names the outcome."""
    from superres.training.tune import resumption_note

    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, state=optuna.trial.TrialState.FAIL))  # 0: killed
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, state=optuna.trial.TrialState.FAIL))  # 1: killed
    study.enqueue_trial({}, user_attrs={"resume_of": 0})
    study.enqueue_trial({}, user_attrs={"resume_of": 1})
    assert resumption_note(study, [0, 1]) == (
        "interrupted trial(s): 0 still waiting to resume (run the command again); 1 still waiting to resume (run the command again)"
    )
    study.optimize(lambda trial: 30.5, n_trials=1)  # runs the first queued one: trial 2 resumes 0
    note = resumption_note(study, [0, 1])
    assert note.startswith("interrupted trial(s): 0 resumed as trial 2, complete (30.5000); 1 still waiting")
    study.optimize(lambda trial: (_ for _ in ()).throw(optuna.TrialPruned()), n_trials=1)
    assert resumption_note(study, [0, 1]).endswith("1 resumed as trial 3, pruned")
