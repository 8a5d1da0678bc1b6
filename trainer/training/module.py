"""The LightningModule: a plain HF causal LM, its loss, and validation loss + exact match.

The model is created in `configure_model`, not `__init__`, so that sharding strategies can wrap it as
it is built. What differs between strategies is asked of the `Parallel` object (trainer/parallel/);
this module names none of them.

Metrics are logged here for Lightning's callback metrics and progress bar only (`logger=False`); they
reach the loggers (tracker, metrics.jsonl) at the optimizer step they belong to, sent by our own code:
the training metrics and throughput of step N by `TrainMetrics` (callbacks.py) at step N, the
validation after step N from `on_validation_epoch_end` at N (the one before any step at 0). Lightning's
logger connector sends step N's `self.log` values at N - 1 (the count of batches that stepped before
it), and after a resume from a checkpoint written at a validation step one step early.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from trainer.config import TrainConfig
from trainer.config.objective import reference_kind
from trainer.data.collate import model_inputs
from trainer.models.build import build_model, seeded
from trainer.models.optim import build_optimizer, build_scheduler
from trainer.models.peft import apply_peft
from trainer.models.scoring import chunked_token_loss, exact_matches, token_loss
from trainer.objectives.metrics import StatMeans, weighted_means
from trainer.parallel import Parallel


def _plain_name(name: str) -> str:
    """A parameter's name as it appears in the state dict: FSDP1 and activation-checkpointing wrappers
    add segments to `named_parameters` that their state-dict hooks remove."""
    for wrapper in ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod."):
        name = name.replace(wrapper, "")
    return name


class CausalLMModule(L.LightningModule):
    def __init__(self, cfg: TrainConfig, hf_config: Any, total_steps: int, parallel: Parallel) -> None:
        super().__init__()
        self.cfg = cfg
        self.hf_config = hf_config
        self.total_steps = total_steps
        self.parallel = parallel
        self.model: Any = None
        self.val_loss = MeanMetric()
        self.val_exact_match = MeanMetric()
        self._window: list[torch.Tensor] = []  # the losses of the micro batches of the step being accumulated
        # Preference objectives (objective != sft): the step (built with the model, as its reference may
        # be the model itself), the metrics of the micro batches of the step, and the validation means.
        self.preference: Any = None
        self._stat_window: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = []
        self.val_stats = StatMeans()
        # A PEFT checkpoint holds only the trainable tensors (on_save_checkpoint): on resume the frozen base
        # comes from a fresh build, and the checkpoint is loaded over it without demanding the base's keys.
        self.strict_loading = cfg.peft.method == "none"

    def configure_model(self) -> None:
        """Build (and let the strategy wrap) the model once; Lightning calls this before validate and fit."""
        if self.model is not None:
            return
        self.parallel.before_model(self)
        peft = self.cfg.peft.method != "none"
        reference = reference_kind(self.cfg.objective, self.cfg.peft.method)
        # A base not saved in checkpoints (PEFT) or a reference copy of the starting weights must come out
        # of a from-scratch build the same on resume.
        copies = reference in ("copy", "precomputed")  # the starting model is needed again (evaluate)
        with seeded(self.cfg.run.seed, enabled=(peft or copies) and self.cfg.model.from_scratch):
            model = apply_peft(build_model(self.cfg.model, self.hf_config), self.cfg.peft)
        if self.cfg.objective.method != "sft":
            from trainer.objectives.reference import build_reference
            from trainer.objectives.step import PreferenceStep

            self.preference = PreferenceStep(self.cfg.objective, build_reference(reference, model))
        self.model = self.parallel.wrap_model(model, self)

    def _precomputed(self) -> Any:
        reference = self.preference.reference if self.preference is not None else None
        return reference if reference is not None and reference.kind == "precomputed" else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        table = checkpoint.get("reference_logps")
        if table is not None and self._precomputed() is not None:
            self._precomputed().load(table)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """PEFT runs keep only what trains (adapters, modules_to_save) plus the optimizer state: the frozen
        base is rebuilt on resume, from its hub id or local folder, or for a from-scratch base from the
        seed (configure_model). Checkpoints read back key by key (sharded ones) keep every key. A
        precomputed reference's table goes along: on resume the policy is no longer the starting model."""
        precomputed = self._precomputed()
        if precomputed is not None and precomputed.filled:
            checkpoint["reference_logps"] = precomputed.state()
        if self.cfg.peft.method == "none" or self.parallel.checkpoint_keeps_every_key:
            return
        state = checkpoint["state_dict"]
        for name, param in self.named_parameters(remove_duplicate=False):
            key = _plain_name(name)
            if not param.requires_grad and key in state:
                del state[key]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**model_inputs(batch), use_cache=False).logits

    def _preference_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        reference = self.preference.reference
        if reference is not None and reference.kind == "copy":
            reference.place_like(self.model)
        if reference is not None and reference.kind == "precomputed" and not reference.filled:
            self._precompute_reference(reference)
        return self.preference(self, batch)

    def _precompute_reference(self, reference: Any) -> None:
        """The starting policy's log-probs of every pair, at its first step (or first validation): every
        rank runs the same pass, so sharded strategies stay in step. A resumed run has the table from its
        checkpoint instead (on_load_checkpoint), since its policy is no longer the starting model."""
        batches, total = self.trainer.datamodule.every_item()
        training = self.model.training
        self.model.eval()
        on_device = ({k: v.to(self.device) for k, v in b.items()} for b in batches)
        reference.fill(self, on_device, total)
        self.model.train(training)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.preference is not None:
            loss, stats = self._preference_step(batch)
            self._window.append(loss.detach())
            self._stat_window.append(stats)
            return loss
        total, count = self._train_loss(batch)
        loss = total / count.clamp(min=1)
        self._window.append(loss.detach())
        return loss

    def _train_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The SFT token loss: from the logits, or with model.loss_chunk_tokens from the decoder's hidden
        states through the output layer a slice at a time (the rules keep that to unsharded strategies)."""
        chunk = self.cfg.model.loss_chunk_tokens
        if chunk is None:
            return token_loss(self(batch), batch["labels"])
        hidden = self.model.get_decoder()(**model_inputs(batch), use_cache=False).last_hidden_state
        return chunked_token_loss(hidden, self.model.get_output_embeddings(), batch["labels"], chunk)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The training metrics of the optimizer step about to be taken: `train/loss` is the mean loss of
        the micro batches accumulated for it (the batch's own loss without accumulation), `train/lr` the
        learning rate this update uses (the scheduler moves it after the step). Here rather than in
        training_step, which runs once per micro batch: this runs once per optimizer step, after the
        window's last backward."""
        if self._window:
            self.log("train/loss", torch.stack(self._window).mean(), prog_bar=True, logger=False)
            self._window.clear()
        if self._stat_window:
            for key, value in weighted_means(self._stat_window).items():
                if key != "loss":
                    self.log(f"train/{key}", value, logger=False)
            self._stat_window.clear()
        self.log("train/lr", float(optimizer.param_groups[0]["lr"]), logger=False)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if self.preference is not None:
            _, stats = self._preference_step(batch)
            self.val_stats.update(stats)
            return
        logits = self(batch)
        total, count = token_loss(logits, batch["labels"])
        self.val_loss.update(total / count.clamp(min=1), weight=count)
        self.val_exact_match.update(exact_matches(logits, batch["labels"]))

    def on_validation_epoch_end(self) -> None:
        """Sent to the loggers here, at the optimizer step just taken (0 before any)."""
        # compute() reduces over data-parallel ranks, so every rank logs the same global value.
        if self.preference is not None:
            metrics = {f"val/{k}": v for k, v in self.val_stats.compute().items()}
        else:
            metrics = {"val/loss": self.val_loss.compute(), "val/exact_match": self.val_exact_match.compute()}
            self.val_loss.reset()
            self.val_exact_match.reset()
        for key, value in metrics.items():
            self.log(key, value, prog_bar=True, logger=False)
        for logger in self.trainer.loggers:
            logger.log_metrics({k: float(v) for k, v in metrics.items()}, step=self.trainer.global_step)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip to `trainer.gradient_clip` by the `trainer.gradient_clip_norm` norm (Lightning's own path
        knows only the 2-norm and refuses FSDP1), and log the pre-clip norm as `train/grad_norm`.
        Called once per optimizer step, after backward; how is the strategy's business."""
        norm = self.parallel.clip_gradients(
            self.trainer, optimizer, gradient_clip_val or None, self.cfg.trainer.gradient_clip_norm
        )
        if norm is not None:
            self.log("train/grad_norm", norm, logger=False)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.cfg.optimizer, on_gpu=self.cfg.on_gpu)
        scheduler = build_scheduler(optimizer, self.cfg.scheduler, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
