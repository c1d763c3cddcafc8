"""logger=tensorboard|mlflow: each run's config and per-epoch metrics, read back through the libraries."""

import json

import pytest

from helpers import TINY, results_under


@pytest.mark.slow
def test_tensorboard_event_files_hold_every_epoch_of_every_run(cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert cli("-m", *TINY, "optim.epochs=3", "seed=0,1", "logger=tensorboard", "name=tb")[0] == 0
    paths = results_under(tmp_path / "out" / "multirun" / "tb")
    assert len(paths) == 2 and not any("logger" in p.parent.name for p in paths)  # the logger is not the run
    for path in paths:
        history = json.loads(path.read_text())["history"]
        events = EventAccumulator(str(path.parent / "tensorboard"))
        events.Reload()
        scalars = events.Scalars("val_loss")
        assert [e.step for e in scalars] == [h["epoch"] for h in history]
        assert [e.value for e in scalars] == pytest.approx([h["val_loss"] for h in history], rel=1e-6)  # float32
        assert "optim.lr: 0.05" in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()


@pytest.mark.slow
def test_mlflow_holds_params_and_metrics_of_every_run_in_a_local_store(cli, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks readers of a file store to opt in too
    assert cli("-m", *TINY, "optim.epochs=3", "seed=0,1", "logger=mlflow", "name=ml")[0] == 0
    client = MlflowClient((tmp_path / "out" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("ml")
    for path in results_under(tmp_path / "out" / "multirun" / "ml"):
        result = json.loads(path.read_text())
        run = client.get_run(result["logger"]["mlflow_run_id"])
        assert run.info.experiment_id == experiment.experiment_id and run.info.status == "FINISHED"
        assert run.data.params["optim.lr"] == "0.05" and run.data.params["seed"] == str(result["seed"])
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == [h["epoch"] for h in result["history"]]
        assert [m.value for m in history] == pytest.approx([h["val_loss"] for h in result["history"]])


def test_a_logger_whose_package_is_missing_is_a_one_line_error(cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    code, _, err = cli(*TINY, "logger=mlflow")
    assert code == 2 and err.strip() == (
        "wdbench: error: logger=mlflow: needs the mlflow package (pip install -e "
        "'.[loggers]'); allowed without it: none"
    )


def _ask_for_experiment(store, barrier, queue):
    from mlflow import MlflowClient

    from wdbench.loggers import mlflow_experiment

    client = MlflowClient((store / "mlruns").as_uri())
    barrier.wait()  # every worker asks at the same moment, as a sweep's workers do
    queue.put(mlflow_experiment(client, "race", store / "mlruns"))


@pytest.mark.slow
def test_workers_starting_together_share_one_mlflow_experiment(tmp_path, monkeypatch):
    import multiprocessing

    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    context = multiprocessing.get_context("fork")
    for trial in range(3):  # without the lock, 4 of 5 such trials made two experiments
        store, workers = tmp_path / str(trial), 6
        barrier, queue = context.Barrier(workers), context.Queue()
        processes = [context.Process(target=_ask_for_experiment, args=(store, barrier, queue)) for _ in range(workers)]
        for process in processes:
            process.start()
        ids = {queue.get(timeout=120) for _ in processes}
        for process in processes:
            process.join()
        experiments = [e for e in MlflowClient((store / "mlruns").as_uri()).search_experiments() if e.name == "race"]
        assert len(experiments) == 1 and ids == {experiments[0].experiment_id}
