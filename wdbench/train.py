"""One training run: a pure function of its validated config (and seed)."""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from wdbench.config import RunConfig
from wdbench.data import Dataset, load_dataset, random_crop_flip
from wdbench.models import build_model
from wdbench.optim import build_optimizer, lr_multiplier
from wdbench.penalty import L2Penalty, split_decayed


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024):
    model.eval()
    loss, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for i in range(0, len(y), batch):
        logits = model(x[i:i + batch])
        loss += F.cross_entropy(logits, y[i:i + batch], reduction="sum")
        correct += (logits.argmax(1) == y[i:i + batch]).sum()
    return loss.item() / len(y), correct.item() / len(y)


def l2_norm(params) -> float:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params))).item()


class Interrupted(Exception):
    """Training stopped at a step boundary because ``Trainer.interrupt()`` said so; resumable."""


class Trainer:
    """Builds everything a run needs; ``fit`` trains it epoch by epoch, resumably."""

    def __init__(self, run: RunConfig):
        self.run = run
        self.device = resolve_device(run.device)
        torch.manual_seed(run.seed)  # model init
        self.data: Dataset = load_dataset(run.data, self.device)
        self.model = build_model(run.model, self.data.in_chans, self.data.n_classes,
                                 self.data.image_size).to(self.device)
        decayed, _ = split_decayed(self.model, run.penalty.exclude)
        self.decayed = [p for _, p in decayed]
        self.n_train, self.batch_size = len(self.data.y_train), run.optim.batch_size
        p, sizes = run.penalty, {"n_decayed": self.n_decayed, "batch_size": self.batch_size, "n_train": self.n_train}
        if p.log10_coef is None:
            self.penalty = L2Penalty(p.lam, p.norm, p.apply, **sizes)
        else:  # a coef-space grid: λ in the named normalisation follows from the model's sizes
            self.penalty = L2Penalty.from_coef(10.0 ** p.log10_coef, p.norm, p.apply, **sizes)
            p.lam = self.penalty.lam
        self.optimizer = build_optimizer(run.optim, self.model.parameters())
        self.rng = torch.Generator().manual_seed(run.seed)  # data order and augmentation
        self.steps_per_epoch = self.n_train // self.batch_size  # drop_last: every step sees B samples
        self.total_steps = run.optim.epochs * self.steps_per_epoch
        self.warmup_steps = round(run.optim.warmup_epochs * self.steps_per_epoch)
        self.history: list[dict] = []
        self.step = 0
        self.train_time_s = 0.0  # summed over every segment of a resumed run
        self.partial_epoch: Optional[dict] = None  # where an interrupted epoch stopped
        self.interrupt: Callable[[], bool] = lambda: False  # polled before every step

    @property
    def n_decayed(self) -> int:
        return sum(p.numel() for p in self.decayed)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def state_dict(self) -> dict:
        """Everything needed to continue bit-for-bit: weights, optimizer, RNGs, position, history."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "step": self.step, "history": self.history, "train_time_s": self.train_time_s,
                "partial_epoch": self.partial_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step, self.history = state["step"], state["history"]
        self.train_time_s, self.partial_epoch = state["train_time_s"], state["partial_epoch"]

    def train_epoch(self) -> float:
        self.model.train()
        opt, data, base_lr, B = self.optimizer, self.data, self.run.optim.lr, self.batch_size
        if self.partial_epoch is None:
            order = torch.randperm(self.n_train, generator=self.rng).to(self.device)
            first, loss_sum = 0, torch.zeros((), device=self.device)
        else:
            order, first, loss_sum = (self.partial_epoch[k] for k in ("order", "next_step", "loss_sum"))
            self.partial_epoch = None
        for i in range(first, self.steps_per_epoch):
            if self.interrupt():
                self.partial_epoch = {"order": order, "next_step": i, "loss_sum": loss_sum}
                raise Interrupted(f"interrupted at step {self.step}")
            idx = order[i * B:(i + 1) * B]
            x = data.x_train[idx]
            if data.augment:
                x = random_crop_flip(x, self.rng)
            s = lr_multiplier(self.step, self.total_steps, self.warmup_steps, self.run.optim.schedule)
            for group in opt.param_groups:
                group["lr"] = base_lr * s
            loss = F.cross_entropy(self.model(x), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            self.penalty.before_step(self.decayed, lr=base_lr * s, lr_multiplier=s)
            opt.step()
            loss_sum += loss.detach()
            self.step += 1
        return loss_sum.item() / self.steps_per_epoch

    def fit(self, progress: bool = False, desc: str = "",
            on_epoch: Optional[Callable[["Trainer"], None]] = None) -> str:
        """Train the remaining epochs; returns "completed" or "diverged" (non-finite loss)."""
        bar = tqdm(total=self.run.optim.epochs, initial=len(self.history), desc=desc,  # pragma: no mutate
                   disable=not progress, unit="epoch", leave=True, dynamic_ncols=True)  # pragma: no mutate
        start = time.perf_counter()
        try:
            for epoch in range(len(self.history), self.run.optim.epochs):
                train_loss = self.train_epoch()
                val_loss, val_acc = evaluate(self.model, self.data.x_val, self.data.y_val)
                record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                          "val_acc": val_acc, "decayed_norm": l2_norm(self.decayed),
                          "lr": self.optimizer.param_groups[0]["lr"]}
                self.history.append(record)
                bar.update()  # pragma: no mutate
                bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val_loss:.3f}",  # pragma: no mutate
                                val_acc=f"{val_acc:.3f}")  # pragma: no mutate
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                    return "diverged"
                if on_epoch:
                    self.train_time_s += time.perf_counter() - start
                    start = time.perf_counter()
                    on_epoch(self)
            return "completed"
        finally:
            self.train_time_s += time.perf_counter() - start
            bar.close()  # pragma: no mutate

    def timing(self) -> dict:
        return {"wall_s": self.train_time_s, "steps": self.step,
                "samples_per_s": self.step * self.batch_size / self.train_time_s if self.train_time_s else None}

    def metrics(self) -> dict:
        final = self.history[-1]
        finite = [h for h in self.history if math.isfinite(h["val_loss"])]
        best = min(finite, key=lambda h: h["val_loss"]) if finite else final
        return {"val_loss": final["val_loss"], "val_acc": final["val_acc"],
                "train_loss": final["train_loss"], "decayed_norm": final["decayed_norm"],
                "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
                "best_val_acc": best["val_acc"], "best_train_loss": best["train_loss"],
                "best_decayed_norm": best["decayed_norm"]}
