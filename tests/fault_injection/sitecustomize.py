"""Imported at interpreter start when this folder is on PYTHONPATH (tests that start real processes
put it there), so that those tests control what a run does and how long it lasts by the clock, not
by how fast this machine trains:
- $WDBENCH_FAIL_WIDTH: runs of that width raise in training (a real job fails on the cluster);
- $WDBENCH_TRAINING_LOG: a line per training start is appended to that file (counts trainings);
- $WDBENCH_EPOCH_DELAY_S: each epoch waits that long first (a run lasts at least epochs × delay);
- $WDBENCH_WAIT_FOR_FILE: each epoch waits until that file exists (holds a sweep until the test says);
- $WDBENCH_PAUSE_AT_EPOCH with $WDBENCH_PAUSED_FILE: once that many epochs are done (saved, with
  checkpoint_every_s=0),
  the run creates the file and waits, at a step boundary, until it is told to stop (a signal)."""

import os
import time
from pathlib import Path

if any(
    os.environ.get(name)
    for name in ("WDBENCH_FAIL_WIDTH", "WDBENCH_EPOCH_DELAY_S", "WDBENCH_WAIT_FOR_FILE", "WDBENCH_PAUSE_AT_EPOCH")
):
    import wdbench.train as _train

    _original_epoch = _train.Pack.train_epoch

    def _train_epoch(self):
        if self.members[0].run.model.width == int(os.environ.get("WDBENCH_FAIL_WIDTH") or -1):
            raise RuntimeError("injected failure")
        time.sleep(float(os.environ.get("WDBENCH_EPOCH_DELAY_S") or 0))
        while os.environ.get("WDBENCH_WAIT_FOR_FILE") and not Path(os.environ["WDBENCH_WAIT_FOR_FILE"]).exists():
            time.sleep(0.1)
        if self.epoch == int(os.environ.get("WDBENCH_PAUSE_AT_EPOCH") or -1):
            Path(os.environ["WDBENCH_PAUSED_FILE"]).touch()
            while not self.interrupt():
                time.sleep(0.01)
        return _original_epoch(self)

    _train.Pack.train_epoch = _train_epoch

if os.environ.get("WDBENCH_TRAINING_LOG"):
    import wdbench.train as _train

    _original_each_epoch = _train.Pack.each_epoch

    def _each_epoch(self, *args, **kwargs):  # one line per run a training starts: the two-launcher test counts them
        with open(os.environ["WDBENCH_TRAINING_LOG"], "a") as log:
            for member in self.members:
                log.write(f"width={member.run.model.width} seed={member.run.seed} pid={os.getpid()}\n")
        return _original_each_epoch(self, *args, **kwargs)

    _train.Pack.each_epoch = _each_epoch
