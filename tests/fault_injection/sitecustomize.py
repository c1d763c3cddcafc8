"""Imported at interpreter start when this folder is on PYTHONPATH (tests that start real processes
put it there): makes runs of width $WDBENCH_FAIL_WIDTH raise in training, so a real job fails on the
cluster, and appends a line per training start to $WDBENCH_TRAINING_LOG."""
import os

if os.environ.get("WDBENCH_FAIL_WIDTH"):
    import wdbench.train as _train

    _original = _train.Trainer.train_epoch

    def _train_epoch(self):
        if self.run.model.width == int(os.environ["WDBENCH_FAIL_WIDTH"]):
            raise RuntimeError("injected failure")
        return _original(self)

    _train.Trainer.train_epoch = _train_epoch

if os.environ.get("WDBENCH_TRAINING_LOG"):
    import wdbench.train as _train

    _original_fit = _train.Trainer.fit

    def _fit(self, *args, **kwargs):  # one line per training start: the two-launcher test counts them
        with open(os.environ["WDBENCH_TRAINING_LOG"], "a") as log:
            log.write(f"width={self.run.model.width} seed={self.run.seed} pid={os.getpid()}\n")
        return _original_fit(self, *args, **kwargs)

    _train.Trainer.fit = _fit
