"""Distributed fine-tuning: PyTorch DDP through Lightning (CPU processes talk over gloo)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from celltosg.train._loop import better, cpu_state, evaluate

if TYPE_CHECKING:
    from celltosg.train._finetune import FinetuneResult, _Setup

log = logging.getLogger(__name__)


def _module_class():
    """The LightningModule class (built on first use: Lightning is slow to import)."""
    import lightning.pytorch as pl
    import torch

    from celltosg.train._finetune import make_optimizer

    class FinetuneModule(pl.LightningModule):
        """One rank's share of fine-tuning: its rows of each epoch, then validation on the whole split.

        Validation runs on every rank over the full split; the parameters are identical on all ranks
        after each synchronised step, so every rank reaches the same early-stopping decision.
        """

        def __init__(self, setup: _Setup):
            super().__init__()
            self.model = setup.model
            self.setup_ = setup
            self.best = {"score": None, "epoch": -1, "state_dict": None}
            self.stale = 0
            self.history: list[dict] = []

        def training_step(self, batch, batch_idx):
            x, y, _rows = batch
            logits = self.model(x)["logits"]
            return torch.nn.functional.cross_entropy(logits, y, weight=self.setup_.weights)

        def configure_optimizers(self):
            run = self.setup_.run
            optimizer, scheduler = make_optimizer(self.model, lr=run["lr"], weight_decay=run["weight_decay"],
                                                  epochs=run["epochs"])
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

        def on_train_epoch_end(self):
            X_val, y_val = self.setup_.data["val"]
            score = evaluate(self.model, X_val, y_val, self.setup_.weights, self.setup_.run["batch_size"])
            epoch = self.current_epoch
            self.history.append({"epoch": epoch, **{f"val_{k}": v for k, v in score.items()}})
            if better(score, self.best["score"]):
                state = cpu_state(self.model)
                self.best = {"score": score, "epoch": epoch, "state_dict": state}
                self.stale = 0
            else:
                self.stale += 1
            if self.stale >= self.setup_.run["patience"]:
                self.trainer.should_stop = True

    return FinetuneModule


def finetune_distributed(setup: _Setup, *, kg, out_dir: Path, devices: int, strategy: str = "ddp"
                         ) -> FinetuneResult:
    """Fine-tune with ``devices`` CPU processes under Lightning's ``strategy`` (DDP over gloo).

    Lightning starts the other ranks by re-running the calling script, so the caller needs an
    ``if __name__ == "__main__":`` guard (the ``celltosg`` command has one). Each rank trains on its
    own shard of every epoch's shuffled rows (DistributedSampler seeded by ``seed``); gradients are
    averaged across ranks. Rank 0 writes ``model.ckpt`` and ``metrics.json``. No resume.
    """
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from celltosg.train._finetune import write_outputs

    run = setup.run
    pl.seed_everything(run["seed"], workers=True, verbose=False)
    X_train, y_train = setup.data["train"]
    dataset = TensorDataset(X_train, torch.from_numpy(y_train), torch.arange(len(X_train)))
    loader = DataLoader(dataset, batch_size=run["batch_size"], shuffle=True)
    module = _module_class()(setup)
    trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy=strategy, max_epochs=run["epochs"],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, deterministic=True,
                         default_root_dir=str(out_dir))
    trainer.fit(module, train_dataloaders=loader)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"best_epoch": module.best["epoch"], "epochs_run": len(module.history), "val": module.best["score"],
               "history": module.history, "seed": run["seed"], "pretrained": run["pretrained"],
               "freeze_encoder": run["freeze_encoder"], "n_train": len(y_train),
               "n_val": len(setup.data["val"][1]), "devices": devices, "strategy": strategy}
    return write_outputs(setup, module.best["state_dict"], out_dir=out_dir, kg=kg,
                         batch_size=run["batch_size"], summary=summary, write=trainer.is_global_zero)
