"""Imported at interpreter start when this folder is on PYTHONPATH (the SLURM tests put it there):
makes runs of width $WDBENCH_FAIL_WIDTH raise in training, so a real job fails on the cluster."""
import os

if os.environ.get("WDBENCH_FAIL_WIDTH"):
    import wdbench.train as _train

    _original = _train.Trainer.train_epoch

    def _train_epoch(self):
        if self.run.model.width == int(os.environ["WDBENCH_FAIL_WIDTH"]):
            raise RuntimeError("injected failure")
        return _original(self)

    _train.Trainer.train_epoch = _train_epoch
