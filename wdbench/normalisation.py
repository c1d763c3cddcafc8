"""The three normalisations' factor c and the conversions between them: pure arithmetic without
torch, so the analysis reads λ in every normalisation without importing the trainer (the
conventions: docs/running.md, "The penalty: exact conventions")."""

from __future__ import annotations

from typing import Optional

from wdbench.config import NORMS


def norm_factor(
    norm: str, n_decayed: Optional[int] = None, batch_size: Optional[int] = None, n_train: Optional[int] = None
) -> float:
    """The factor c of a normalisation: 1 (sum), 1/N (mean) or B/N_train (per_step)."""
    if norm == "sum":
        return 1.0
    if norm == "mean":
        if not n_decayed or n_decayed < 1:
            raise ValueError("penalty norm 'mean' needs n_decayed >= 1")
        return 1.0 / n_decayed
    if norm == "per_step":
        if not batch_size or not n_train or batch_size < 1 or n_train < 1:
            raise ValueError("penalty norm 'per_step' needs batch_size >= 1 and n_train >= 1")
        return batch_size / n_train
    raise ValueError(f"penalty norm {norm!r}: unknown; allowed: {', '.join(NORMS)}")


def convert_lam(lam: float, from_norm: str, to_norm: str, **sizes: int) -> float:
    """The λ in ``to_norm`` that gives the same coefficient on Σw² as ``lam`` in ``from_norm``."""
    return lam * norm_factor(from_norm, **sizes) / norm_factor(to_norm, **sizes)


def torch_weight_decay(lam: float, norm: str = "sum", **sizes: int) -> float:
    """The ``weight_decay`` of torch's SGD/Adam (coupled) or AdamW (decoupled) equal to λ: 2·λ·c."""
    return 2.0 * lam * norm_factor(norm, **sizes)
