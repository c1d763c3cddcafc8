"""Training: a pack of K ≥ 1 runs trained as one stacked model, each member still its own run.

A pack's members share everything that shapes the computation (``config.pack_key``: model, data,
optimizer, schedule, epochs, batch size, device, penalty.apply) and differ in the penalty
coefficient and the seed. Each member is built as it would be alone (init from its seed), then the
members' tensors are stacked along a new leading axis and the members' own modules are left as
views of their slices (for state dicts and metrics). One forward pass maps the shared module over
the members with ``torch.func.vmap`` (K = 1: the module itself, so a run trained alone computes
exactly what it always did); each member draws its minibatch order and augmentation from its own
generator. SGD and Adam update elementwise, so one stock optimizer on the stacked tensors gives each
member its own update; ``PackPenalty`` gives each its own coef; BatchNorm keeps per-member running
statistics (stacked buffers, updated in place).
"""

from __future__ import annotations

import functools
import math
import os
import socket
import time
from typing import Callable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from wdbench.config import RunConfig, pack_key
from wdbench.data import Dataset, crop_flip, crop_flip_offsets, run_dataset
from wdbench.models import build_model, stochastic_layers, unfused_attention
from wdbench.numerics import autocast, set_numerics
from wdbench.optim import build_optimizer, lr_multiplier
from wdbench.parameterisation import apply_mup, model_scalings
from wdbench.penalty import PackPenalty, penalty_for, split_decayed
from wdbench.sources import input_shape, train_size


class NoDevice(RuntimeError):
    """device=cuda on a node that has no usable GPU: checked where the run trains, not where it is launched."""


def resolve_device(name: str) -> torch.device:
    """The device a run trains on here: auto is this node's GPU if it has one, else its CPU."""
    if name == "auto":  # a SLURM task that asked for a GPU must train on it (hydra_plugins...slurm)
        name = os.environ.get("WDBENCH_AUTO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NoDevice(
            f"device=cuda: no CUDA device on {socket.gethostname()} (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); allowed on this node: auto, cpu"
        )
    return device


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``; to a GPU through pinned memory, so the host does not wait for it."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A copy in host memory. Blocking: a non-blocking copy would land in pinned memory, which torch
    keeps cached for good (a wide pack's whole state, from its first checkpoint on)."""
    return tensor.detach().to("cpu", copy=True)


EVAL_BATCH = 1024  # validation samples per forward pass


@torch.no_grad()
def evaluate(
    logits: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int = EVAL_BATCH,
    regression: bool = False,
):
    """Per-sample mean loss and accuracy of each member: ``logits`` maps (b, ...) to (K, b, classes).
    A regression's loss is the squared error of its one output, and it has no accuracy (None)."""
    loss = correct = None
    for i in range(0, len(y), batch):
        out = logits(x[i : i + batch])
        target = y[i : i + batch].expand(out.shape[0], -1)
        if regression:
            batch_loss = (out[..., 0] - target).square().sum(1)
        else:
            batch_loss = F.cross_entropy(out.transpose(1, 2), target, reduction="none").sum(1)
            batch_correct = (out.argmax(2) == target).sum(1)
            correct = batch_correct if correct is None else correct + batch_correct
        loss = batch_loss if loss is None else loss + batch_loss
    return (loss.double() / len(y)).tolist(), [None] * len(loss) if regression else (correct.double() / len(y)).tolist()


def l2_norm(params) -> float:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params))).item()


FOOTPRINT_MEMBERS = 2  # members of the vmapped forward that member_bytes measures (the cost per member is flat in K)


def _saved_bytes(
    run: RunConfig, in_chans: int, n_classes: int, image_size: int, members: int
) -> tuple[int, int, int, int]:
    """Counted on the meta device (no memory), per member: bytes of its parameters, of its minibatch,
    of every tensor a forward pass of ``members`` members (vmapped as in a pack; 1: the module alone)
    saves for backward (each storage once, parameters and input apart), and of the largest of those."""
    with torch.device("meta"):
        models = [build_model(run.model, in_chans, n_classes, image_size) for _ in range(members)]
        x = torch.empty(members, run.optim.batch_size, in_chans, image_size, image_size)
    if members > 1:
        unfused_attention(models[0])  # as Pack does on a CPU; on a GPU the fused kernels' saved tensors are smaller
        params, buffers = stack_module_state(models)
        forward = functools.partial(vmap(lambda p, b, xs: functional_call(models[0], (p, b), (xs,))), params, buffers)
    else:
        params, forward = dict(models[0].named_parameters()), lambda xs: models[0](xs[0])
    counted = {t.untyped_storage()._cdata for t in (x, *params.values())}  # meta storages have no address
    saved: dict[int, int] = {}

    def count(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in counted:
            saved[storage._cdata] = storage.nbytes()
        return tensor

    models[0].train()
    with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
        forward(x)
    largest = max(saved.values(), default=0) // members
    n_params = sum(p.numel() for p in models[0].parameters())
    return 4 * n_params, x.nbytes // members, sum(saved.values()) // members, largest


def member_bytes(run: RunConfig, in_chans: int, n_classes: int, image_size: int, packed: bool = True) -> int:
    """Device memory one member of a pack needs, estimated without allocating any (docs/gpu.md):
    its float32 parameters, gradients and optimizer state (Adam: and the temporary of its foreach
    step), plus the larger of a training step (its minibatch and every tensor the vmapped forward
    saves for backward: BatchNorm's batching rule saves one more activation than a module alone)
    and its share of an evaluation step (about the input and output of the largest layer, for
    ``eval_members(K)``·EVAL_BATCH samples at once). ``packed``: as a member of a pack (vmapped);
    else as a run alone."""
    param_bytes, batch, saved, largest = _saved_bytes(
        run, in_chans, n_classes, image_size, FOOTPRINT_MEMBERS if packed else 1
    )
    adam = run.optim.name in ("adam", "adamw")
    state_slots = 2 + 1 if adam else int(run.optim.momentum > 0)  # Adam: m, v and sqrt(v)'s temporary
    shared_batch = run.optim.batch_size == train_size(run.data) and not run.data.augment  # Pack._batch: one for all
    train_step = (0 if shared_batch else batch) + saved
    evaluation = 2 * max(batch, largest) * EVAL_BATCH // run.optim.batch_size  # a linear map saves none
    return param_bytes * (2 + state_slots) + max(train_step, evaluation)


def alone_only(run: RunConfig) -> Optional[str]:
    """Why runs of this model train alone and not packed (None: they pack): a model that draws random
    numbers in training (dropout, drop path), since under vmap no member would draw what it draws alone."""
    side, in_chans, n_classes = input_shape(run)
    with torch.device("meta"):
        layers = stochastic_layers(build_model(run.model, in_chans, n_classes, side))
    if not layers:
        return None
    what = f"model.arch={run.model.arch}" if hasattr(run.model, "arch") else f"model={run.model.name}"
    return (
        f"{what} draws random numbers in training ({layers[0]}: dropout or drop path), which a pack's members "
        "could not draw as each would alone, so each run trains alone (model.kwargs can set its rates to 0)"
    )


def eval_members(size: int, batch_size: int) -> int:
    """Members evaluated at once: EVAL_BATCH samples for each, at most as many samples in all as a
    training step holds (K·B), so evaluation never needs more memory than training."""
    return max(1, min(size, size * batch_size // EVAL_BATCH))


def angles(before: Sequence[torch.Tensor], after: Sequence[torch.Tensor]) -> torch.Tensor:
    """(tensors, K): the angle between each member's slice of each stacked tensor before and after,
    as 2·asin(|â − b̂|/2) (exact for small angles, where arccos of a float32 cosine is not)."""
    rows = []
    for b, a in zip(before, after):
        b, a = b.flatten(1), a.flatten(1)
        gap = (a / a.norm(dim=1, keepdim=True) - b / b.norm(dim=1, keepdim=True)).norm(dim=1)
        rows.append(2 * torch.asin((gap / 2).clamp(max=1)))
    return torch.stack(rows)


class Interrupted(Exception):
    """Training stopped at a step boundary because ``Pack.interrupt()`` said so; resumable."""


class Member:
    """One run of a pack: its config, penalty, generator and history, and its own module, whose
    tensors become views of its slice of the pack."""

    def __init__(self, run: RunConfig, data: Dataset, device: torch.device):
        self.run = run
        torch.manual_seed(run.seed)  # model init
        self.model = build_model(run.model, data.in_chans, data.n_classes, data.image_size)
        self.lr_multipliers = {name: 1.0 for name, _ in self.model.named_parameters()}  # SP: every layer at η
        if getattr(run.model, "param", "sp") == "mup":
            scaling = model_scalings(run.model, self.model, data.in_chans, data.n_classes, data.image_size)
            apply_mup(self.model, scaling)
            self.lr_multipliers = {name: s.lr_multiplier(run.optim.name) for name, s in scaling.items()}
        self.model.to(device)
        decayed, _ = split_decayed(self.model, run.penalty.exclude)
        self.decayed_names = [name for name, _ in decayed]
        self.n_decayed = sum(p.numel() for _, p in decayed)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.penalty = penalty_for(run.penalty, self.n_decayed, run.optim.batch_size, len(data.y_train))
        self.rng = torch.Generator().manual_seed(run.seed)  # data order and augmentation
        self.history: list[dict] = []
        self.status: Optional[str] = None  # "diverged" once it has: it trains on, unrecorded

    def decayed(self) -> list[torch.Tensor]:
        named = dict(self.model.named_parameters())
        return [named[name] for name in self.decayed_names]

    def metrics(self) -> dict:
        final = self.history[-1]
        finite = [h for h in self.history if math.isfinite(h["val_loss"])]
        best = min(finite, key=lambda h: h["val_loss"]) if finite else final
        return {
            "val_loss": final["val_loss"],
            "val_acc": final["val_acc"],
            "train_loss": final["train_loss"],
            "decayed_norm": final["decayed_norm"],
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "best_val_acc": best["val_acc"],
            "best_train_loss": best["train_loss"],
            "best_decayed_norm": best["decayed_norm"],
        }


def _point_at(module: torch.nn.Module, name: str, tensor: torch.Tensor, parameter: bool) -> None:
    owner, _, leaf = name.rpartition(".")
    sub = module.get_submodule(owner)
    if parameter:
        getattr(sub, leaf).data = tensor
    else:
        sub._buffers[leaf] = tensor


class Pack:
    """Builds everything a pack of runs needs; ``fit`` trains it epoch by epoch, resumably."""

    def __init__(self, runs: Sequence[RunConfig], data: Optional[Dataset] = None):
        keys = {pack_key(run) for run in runs}
        if len(keys) != 1:
            raise ValueError("a pack's runs must share everything but penalty.lam/norm and the seed")
        first = runs[0]
        self.device = resolve_device(first.device)
        self.data: Dataset = data if data is not None else run_dataset(first, self.device)
        self.members = [Member(run, self.data, self.device) for run in runs]
        self.size = len(self.members)
        stochastic = stochastic_layers(self.members[0].model)
        if self.size > 1 and stochastic:  # (the runner trains such runs alone: train.alone_only)
            raise ValueError(f"a pack's model must not draw random numbers in training; {stochastic[0]} does")
        if self.size > 1 and self.device.type != "cuda":  # the CPU's fused attention has no batching rule (the
            unfused_attention(self.members[0].model)  # GPU's kernels have): vmap would loop over members and samples
        self.precision, self.numerics = first.precision, set_numerics(first)
        self.params, self.buffers = stack_module_state([m.model for m in self.members])
        for k, member in enumerate(self.members):
            for name, tensor in self.params.items():
                _point_at(member.model, name, tensor.detach()[k], parameter=True)
            for name, tensor in self.buffers.items():
                _point_at(member.model, name, tensor[k], parameter=False)
        self.module = self.members[0].model  # the template functional_call runs with the stacked tensors
        # A pack of one runs its module directly (its parameters share the stacked tensors' storage);
        # its gradients are handed to the stacked tensors, which the optimizer and penalty step.
        named = dict(self.module.named_parameters())
        self._own_parameters = [(t, named[n]) for n, t in self.params.items()] if self.size == 1 else []
        self.decayed = [self.params[name] for name in self.members[0].decayed_names]
        self.penalty = PackPenalty([m.penalty for m in self.members], self.device)
        lr_multipliers = self.members[0].lr_multipliers
        self.decayed_lr_multipliers = [lr_multipliers[name] for name in self.members[0].decayed_names]
        groups: dict[float, list] = {}  # one parameter group per learning-rate multiplier (μP's per layer)
        for name, tensor in self.params.items():
            groups.setdefault(lr_multipliers[name], []).append(tensor)
        self.optimizer = build_optimizer(first.optim, [{"params": ps, "lr_multiplier": m} for m, ps in groups.items()])
        self.n_train, self.batch_size = len(self.data.y_train), first.optim.batch_size
        self.steps_per_epoch = self.n_train // self.batch_size  # drop_last: every step sees B samples
        self.epochs = first.optim.epochs
        self.total_steps = self.epochs * self.steps_per_epoch
        self.warmup_steps = round(first.optim.warmup_epochs * self.steps_per_epoch)
        self.base_lr, self.schedule = first.optim.lr, first.optim.schedule
        self.diagnose = any(m.run.diagnostics for m in self.members)  # per-tensor norms and angular updates
        self.angular_update = torch.full((len(self.decayed), self.size), math.nan)  # until an epoch's last step
        self.step = 0
        self.epoch = 0
        self.train_time_s = 0.0  # summed over every segment of a resumed pack
        self.partial_epoch: Optional[dict] = None  # where an interrupted epoch stopped
        self.interrupt: Callable[[], bool] = lambda: False  # polled before every step

    # --- the stacked forward pass -------------------------------------------------------------------
    def _member_logits(self, params: Optional[dict], buffers: Optional[dict], x: torch.Tensor) -> torch.Tensor:
        if params is None:  # a pack of one: the module itself, whose tensors are the stacked ones' storage
            return self.module(x).float()  # float: bf16 autocast's logits, for a float32 loss
        return functional_call(self.module, (params, buffers), (x,)).float()

    def _member_loss(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self._member_logits(params, buffers, x)  # the loss is a run's own minibatch mean
        return F.mse_loss(out[:, 0], y) if self.data.regression else F.cross_entropy(out, y)

    def _per_member(
        self, fn: Callable, *args: torch.Tensor, member_axis: tuple, members: slice = slice(None)
    ) -> torch.Tensor:
        """``fn(params, buffers, *args)`` of every member (or of ``members``), stacked; ``member_axis[i]``
        says whether args[i] has one slice per member (True) or is shared (False). K = 1: fn itself, no
        vmap. The forward pass runs under the run's autocast (precision=bf16)."""
        with autocast(self.precision, self.device):
            if self.size == 1:  # functional_call's swapping in and out cost a small run ~12% of its time
                return fn(None, None, *(a[0] if per else a for a, per in zip(args, member_axis)))[None]
            params = {name: t[members] for name, t in self.params.items()}
            buffers = {name: t[members] for name, t in self.buffers.items()}
            return vmap(fn, in_dims=(0, 0, *(0 if per else None for per in member_axis)))(params, buffers, *args)

    def logits(self, x: torch.Tensor, shared_input: bool = False) -> torch.Tensor:
        """(K, b, classes): each member's logits for its own batch x[k] (or for one shared batch x,
        ``eval_members`` members at a time, so that evaluating never needs more memory than training)."""
        if not shared_input:
            return self._per_member(self._member_logits, x, member_axis=(True,))
        at_once = eval_members(self.size, self.batch_size)
        return torch.cat(
            [
                self._per_member(self._member_logits, x, member_axis=(False,), members=slice(k, k + at_once))
                for k in range(0, self.size, at_once)
            ]
        )

    # --- state: each member's in the format of a run trained alone ----------------------------------
    def state_dicts(self) -> list[dict]:
        """Per member, everything needed to continue bit-for-bit, as a run trained alone would save it
        (so a member resumes in any pack, or alone, on any device): weights, optimizer, RNGs, position,
        history. Every tensor is a copy in host memory: a checkpoint takes nothing from the GPU."""
        optimizer = self.optimizer.state_dict()  # "step" is shared; every other entry is per element
        partial = self.partial_epoch
        states = []
        for k, member in enumerate(self.members):
            states.append(
                {
                    "model": {n: _to_host(t) for n, t in member.model.state_dict().items()},
                    "optimizer": {
                        "param_groups": optimizer["param_groups"],
                        "state": {
                            i: {key: _to_host(value if key == "step" else value[k]) for key, value in state.items()}
                            for i, state in optimizer["state"].items()
                        },
                    },
                    "rng": member.rng.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                    "step": self.step,
                    "history": member.history,
                    "train_time_s": self.train_time_s,
                    "partial_epoch": None
                    if partial is None
                    else {
                        "order": _to_host(partial["order"][k]),
                        "next_step": partial["next_step"],
                        "loss_sum": _to_host(partial["loss_sum"][k]),
                        "offsets": None if partial["offsets"] is None else _to_host(partial["offsets"][:, :, k]),
                    },
                }
            )
        return states

    def load_state_dicts(self, states: Sequence[dict]) -> None:
        """Continue from one state per member; all must stand at the same step."""
        positions = {(s["step"], len(s["history"])) for s in states}
        if len(positions) != 1:
            raise ValueError(f"a pack's members must resume at one step; got (step, epochs) {sorted(positions)}")
        for member, state in zip(self.members, states):
            member.model.load_state_dict(state["model"])
            member.rng.set_state(state["rng"])
            member.history = state["history"]
        per_param = [s["optimizer"]["state"] for s in states]
        multipliers = [group["lr_multiplier"] for group in self.optimizer.param_groups]  # the model's own
        self.optimizer.load_state_dict(
            {
                "param_groups": states[0]["optimizer"]["param_groups"],
                "state": {
                    i: {
                        key: value if key == "step" else torch.stack([p[i][key] for p in per_param])
                        for key, value in state.items()
                    }
                    for i, state in per_param[0].items()
                },
            }
        )
        for group, multiplier in zip(self.optimizer.param_groups, multipliers):  # a checkpoint from before
            group["lr_multiplier"] = multiplier  # per-layer learning rates has none
        torch.set_rng_state(states[0]["torch_rng"])
        cuda_rng = states[0]["cuda_rng"]
        if cuda_rng is not None and self.device.type == "cuda":  # saved on a GPU, resumed on one
            torch.cuda.set_rng_state(cuda_rng[0] if isinstance(cuda_rng, list) else cuda_rng, self.device)
        self.step, self.epoch = states[0]["step"], len(states[0]["history"])
        self.train_time_s = states[0]["train_time_s"]
        if states[0]["partial_epoch"] is not None:
            partials = [s["partial_epoch"] for s in states]
            first = partials[0]["next_step"]
            offsets = (
                None
                if not self.data.augment
                else torch.stack(
                    [  # absent from a checkpoint written before
                        p["offsets"]
                        if p.get("offsets") is not None  # they were drawn ahead, whose generator stands
                        else self._draw_offsets(m, range(first, self.steps_per_epoch))  # at the step: drawn from it now
                        for p, m in zip(partials, self.members)
                    ],
                    dim=2,
                )
            )
            self.partial_epoch = {
                "order": _to_device(torch.stack([p["order"] for p in partials]), self.device),
                "next_step": first,
                "loss_sum": _to_device(torch.stack([p["loss_sum"] for p in partials]), self.device),
                "offsets": None if offsets is None else _to_device(offsets, self.device),
            }

    # --- training -----------------------------------------------------------------------------------
    def _batch(
        self, order: torch.Tensor, i: int, offsets: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Step i's inputs and targets, and whether they hold one slice per member (else one shared);
        ``offsets``: this step's (3, K, B) crop/flip draws on the device, None without augmentation."""
        data, B = self.data, self.batch_size
        if B == self.n_train and not data.augment:  # full batch: every member's batch is the training set
            return data.x_train, data.y_train, False  # (the order only permutes the mean's terms: no gather)
        idx = order[:, i * B : (i + 1) * B]
        x = data.x_train[idx]
        if offsets is not None:  # one vectorised crop of every member's batch: (3, K·B) offsets, no host work
            x = crop_flip(x.flatten(0, 1), *offsets.flatten(1)).view(x.shape)
        return x, data.y_train[idx], True

    def _epoch_offsets(self) -> Optional[torch.Tensor]:
        """(steps, 3, K, B) crop/flip offsets of this epoch's steps, drawn now from each member's
        generator in the order a step-by-step draw would use, and copied to the device once: the
        steps then run without waiting for the host."""
        if not self.data.augment:
            return None
        steps = range(self.steps_per_epoch)
        return _to_device(torch.stack([self._draw_offsets(m, steps) for m in self.members], dim=2), self.device)

    def _draw_offsets(self, member: Member, steps: range) -> torch.Tensor:
        """(steps, 3, B) uint8: the (dy, dx, flip) of each step in turn, from the member's generator."""
        return torch.stack([torch.stack(crop_flip_offsets(self.batch_size, member.rng)) for _ in steps]).to(
            torch.uint8
        )  # values < 2·pad + 1 = 9

    def train_epoch(self) -> list[float]:
        """One epoch of every member; returns each member's mean minibatch loss."""
        self.module.train()
        if self.partial_epoch is None:
            order = torch.stack([torch.randperm(self.n_train, generator=m.rng) for m in self.members])
            order, offsets = _to_device(order, self.device), self._epoch_offsets()
            first, loss_sum = 0, torch.zeros(self.size, device=self.device)
        else:  # offsets: those of the steps left
            order, first, loss_sum, offsets = (
                self.partial_epoch[k] for k in ("order", "next_step", "loss_sum", "offsets")
            )
            self.partial_epoch = None
        for i in range(first, self.steps_per_epoch):
            if self.interrupt():
                self.partial_epoch = {
                    "order": order,
                    "next_step": i,
                    "loss_sum": loss_sum,
                    "offsets": None if offsets is None else offsets[i - first :],
                }
                raise Interrupted(f"interrupted at step {self.step}")
            x, y, per_member = self._batch(order, i, None if offsets is None else offsets[i - first])
            s = lr_multiplier(self.step, self.total_steps, self.warmup_steps, self.schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = self.base_lr * s * group["lr_multiplier"]
            losses = self._per_member(self._member_loss, x, y, member_axis=(per_member, per_member))
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # member k's gradient is that of its own loss: the others add 0
            for stacked, own in self._own_parameters:  # a pack of one: its module's gradients, as the stack's
                if own.grad is not None:
                    stacked.grad, own.grad = own.grad.view(stacked.shape), None
            before = (
                [p.detach().clone() for p in self.decayed] if self.diagnose and i == self.steps_per_epoch - 1 else None
            )  # the angular update is sampled at each epoch's last step (resumes exactly)
            self.penalty.before_step(
                self.decayed,
                [p.grad for p in self.decayed],
                lr=self.base_lr * s,
                lr_multiplier=s,
                layer_lr_multipliers=self.decayed_lr_multipliers,
            )
            self.optimizer.step()
            if before is not None:
                self.angular_update = angles(before, [p.detach() for p in self.decayed])
            loss_sum += losses.detach()
            self.step += 1
        return (loss_sum / self.steps_per_epoch).tolist()

    def fit(self, progress: bool = False, desc: str = "") -> list[str]:
        """Train the remaining epochs; returns each member's status: "completed" or "diverged"."""
        for _ in self.each_epoch(progress, desc):
            pass
        return [m.status or "completed" for m in self.members]

    def each_epoch(self, progress: bool = False, desc: str = "") -> Iterator[list[Member]]:
        """Train the remaining epochs one at a time, handing control back after each: yields the
        members that diverged in it (a non-finite loss: their history ends there and the others
        train on), so the caller (wdbench.runner) records and checkpoints between epochs."""
        settings = dict(total=self.epochs, initial=self.epoch, desc=desc, disable=not progress)  # pragma: no mutate
        bar = tqdm(**settings, unit="epoch", leave=True, dynamic_ncols=True)  # pragma: no mutate
        start = time.perf_counter()
        try:
            for epoch in range(self.epoch, self.epochs):
                if all(m.status for m in self.members):
                    return
                train_losses = self.train_epoch()
                self.module.eval()
                val_losses, val_accs = evaluate(
                    lambda x: self.logits(x, shared_input=True),
                    self.data.x_val,
                    self.data.y_val,
                    regression=self.data.regression,
                )
                self.epoch = epoch + 1
                self.train_time_s += time.perf_counter() - start
                diverged = self._record_epoch(train_losses, val_losses, val_accs)
                _show(bar, self)
                yield diverged
                start = time.perf_counter()  # the caller's time between epochs is not training time
        finally:
            self.train_time_s += time.perf_counter() - start
            bar.close()  # pragma: no mutate

    def _record_epoch(self, train_losses: list, val_losses: list, val_accs: list) -> list[Member]:
        """Each training member's history entry for the epoch just trained; returns those that diverged."""
        lr = self.base_lr * lr_multiplier(self.step - 1, self.total_steps, self.warmup_steps, self.schedule)
        equilibrium = self._equilibrium() if self.diagnose else {}
        diverged = []
        for k, (member, train_loss, val_loss, val_acc) in enumerate(
            zip(self.members, train_losses, val_losses, val_accs)
        ):
            if member.status:
                continue
            member.history.append(
                {
                    "epoch": self.epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_acc": val_acc,
                    "decayed_norm": l2_norm(member.decayed()),
                    "lr": lr,
                    **equilibrium.get(k, {}),
                }
            )
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                member.status = "diverged"
                diverged.append(member)
        return diverged

    def _equilibrium(self) -> dict[int, dict]:
        """Per member: each decayed tensor's norm now and its angular update at the epoch's last step
        (radians), by name: what the rotational-equilibrium predictions are about."""
        names = self.members[0].decayed_names
        norms = torch.stack([p.detach().flatten(1).norm(dim=1) for p in self.decayed]).T.tolist()  # (K, tensors)
        updates = self.angular_update.T.tolist()
        return {
            k: {"tensor_norm": dict(zip(names, norms[k])), "angular_update": dict(zip(names, updates[k]))}
            for k in range(self.size)
        }

    def timing(self) -> dict:
        """The pack's wall time and steps; samples_per_s counts every member's samples."""
        return {
            "wall_s": self.train_time_s,
            "steps": self.step,
            "pack_size": self.size,
            "samples_per_s": self.size * self.step * self.batch_size / self.train_time_s if self.train_time_s else None,
        }


def _show(bar, pack: Pack) -> None:
    bar.update()  # pragma: no mutate
    if pack.size == 1:  # pragma: no mutate
        h = pack.members[0].history[-1]  # pragma: no mutate
        postfix = {"loss": f"{h['train_loss']:.3f}", "val_loss": f"{h['val_loss']:.3f}"}  # pragma: no mutate
        postfix["val_acc"] = f"{h['val_acc']:.3f}" if h["val_acc"] is not None else "-"  # pragma: no mutate
        bar.set_postfix(**postfix)  # pragma: no mutate
