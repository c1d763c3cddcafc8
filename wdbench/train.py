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


class Trainer:
    """Builds everything a run needs; ``fit`` trains it epoch by epoch."""

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
        self.penalty = L2Penalty(run.penalty.lam, run.penalty.norm, run.penalty.apply,
                                 n_decayed=self.n_decayed, batch_size=self.batch_size, n_train=self.n_train)
        self.optimizer = build_optimizer(run.optim, self.model.parameters())
        self.rng = torch.Generator().manual_seed(run.seed)  # data order and augmentation
        self.steps_per_epoch = self.n_train // self.batch_size  # drop_last: every step sees B samples
        self.total_steps = run.optim.epochs * self.steps_per_epoch
        self.warmup_steps = round(run.optim.warmup_epochs * self.steps_per_epoch)
        self.history: list[dict] = []
        self.step = 0

    @property
    def n_decayed(self) -> int:
        return sum(p.numel() for p in self.decayed)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def train_epoch(self) -> float:
        self.model.train()
        opt, data, base_lr, B = self.optimizer, self.data, self.run.optim.lr, self.batch_size
        order = torch.randperm(self.n_train, generator=self.rng).to(self.device)
        loss_sum = torch.zeros((), device=self.device)
        for i in range(self.steps_per_epoch):
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
        bar = tqdm(range(len(self.history), self.run.optim.epochs), desc=desc, disable=not progress,
                   unit="epoch", leave=True, dynamic_ncols=True)
        for epoch in bar:
            train_loss = self.train_epoch()
            val_loss, val_acc = evaluate(self.model, self.data.x_val, self.data.y_val)
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                      "val_acc": val_acc, "decayed_norm": l2_norm(self.decayed),
                      "lr": self.optimizer.param_groups[0]["lr"]}
            self.history.append(record)
            bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val_loss:.3f}", val_acc=f"{val_acc:.3f}")
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                return "diverged"
            if on_epoch:
                on_epoch(self)
        return "completed"

    def metrics(self) -> dict:
        final = self.history[-1]
        finite = [h for h in self.history if math.isfinite(h["val_loss"])]
        best = min(finite, key=lambda h: h["val_loss"]) if finite else final
        return {"val_loss": final["val_loss"], "val_acc": final["val_acc"],
                "train_loss": final["train_loss"], "decayed_norm": final["decayed_norm"],
                "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
                "best_val_acc": best["val_acc"], "best_train_loss": best["train_loss"],
                "best_decayed_norm": best["decayed_norm"]}


def timed_fit(trainer: Trainer, **kwargs) -> tuple[str, dict]:
    start, steps_before = time.perf_counter(), trainer.step
    status = trainer.fit(**kwargs)
    wall = time.perf_counter() - start
    steps = trainer.step - steps_before
    return status, {"wall_s": wall, "steps": steps,
                    "samples_per_s": steps * trainer.batch_size / wall if wall > 0 else None}
