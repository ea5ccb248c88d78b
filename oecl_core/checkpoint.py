"""A run folder's checkpoint.pt: what the engine saves, and the checks before a run resumes from it."""
from __future__ import annotations

from pathlib import Path

import torch

from .config import RunConfig

CHECKPOINT = "checkpoint.pt"
# Left in a run folder instead of checkpoint.pt by a run scored with keep_checkpoint False (runner.remove_checkpoint).
CHECKPOINT_REMOVED = "checkpoint_removed.json"
# Settings that may change between an interrupted run and its resumption without changing the result.
RESUMABLE_CHANGES = {"device", "checkpoint_every", "compile", "cuda_graphs", "score_batch_views"}
# A checkpoint written before a setting existed ran with the setting's default.
SETTING_DEFAULTS = RunConfig().to_dict()


class ResumeMismatch(RuntimeError):
    pass


class CheckpointRemoved(RuntimeError):
    """The run was scored and its checkpoint removed (keep_checkpoints: false): it cannot be trained further."""


def settings_changes(saved: dict, cfg: RunConfig) -> str:
    """The settings that differ between a run folder's saved settings and cfg, beyond those a resumption may change
    ("" when none); a setting the saved ones lack ran with its default."""
    saved, wanted = {**{k: v for k, v in SETTING_DEFAULTS.items() if k not in saved}, **saved}, cfg.to_dict()
    diff = sorted(k for k in wanted if k not in RESUMABLE_CHANGES and saved.get(k) != wanted[k])
    return ", ".join(f"{k}: {saved.get(k)!r} -> {wanted[k]!r}" for k in diff)


def load_checkpoint(out_dir: Path, cfg: RunConfig):
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        if (Path(out_dir) / CHECKPOINT_REMOVED).exists():
            raise CheckpointRemoved(
                f"{out_dir} was scored and its checkpoint removed ({CHECKPOINT_REMOVED}: keep_checkpoints false); "
                "it cannot be trained further. Delete the run folder to train it again from the start.")
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    changes = settings_changes(dict(state["config"]), cfg)
    if changes:
        raise ResumeMismatch(
            f"{path} was written by a run with other settings ({changes}). Use another output folder, "
            "or delete the checkpoint to start this run over."
        )
    return state


def optimizer_state(optimizer) -> dict:
    """optimizer.state_dict() with every learning rate a float (GraphedStep keeps it in a device tensor)."""
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = group["lr"].item()
    return state
