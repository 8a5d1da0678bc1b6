"""The LightningModule: a plain HF causal LM, its loss, and validation loss + exact match.

The model is created in `configure_model`, not `__init__`, so that sharding strategies can wrap it as
it is built. Validation reports the token-weighted loss and `exact_match`: the share of examples whose
every response token (and the closing EOS) is the argmax under teacher forcing. That is exactly the
share that greedy decoding would answer word for word, computed without a generation loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from trainer.config import TrainConfig
from trainer.data.encoded import IGNORE
from trainer.models.build import build_model
from trainer.models.optim import build_optimizer, build_scheduler
from trainer.models.peft import apply_peft
from trainer.models.sharding import grad_norm, shard_model


def exact_matches(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example: 1.0 when every trained position's argmax equals its label (shifted by one)."""
    pred = logits[:, :-1].argmax(-1)
    target = labels[:, 1:]
    trained = target != IGNORE
    wrong = (pred != target) & trained
    return (~wrong.any(dim=1)).float()[trained.any(dim=1)]


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of next-token cross entropy over trained positions, and their count."""
    shift_logits = logits[:, :-1].float().reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    total = torch.nn.functional.cross_entropy(
        shift_logits, shift_labels, ignore_index=IGNORE, reduction="sum"
    )
    return total, (shift_labels != IGNORE).sum()


def _plain_name(name: str) -> str:
    """A parameter's name as it appears in the state dict: FSDP1 and activation-checkpointing wrappers
    add segments to `named_parameters` that their state-dict hooks remove."""
    for wrapper in ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod."):
        name = name.replace(wrapper, "")
    return name


@contextmanager
def _seeded(seed: int, enabled: bool) -> Iterator[None]:
    """Build under `seed` without touching the global generators: a from-scratch base that is not saved
    in PEFT checkpoints must come out the same on resume, whatever ran before configure_model."""
    if not enabled:
        yield
        return
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class CausalLMModule(L.LightningModule):
    def __init__(self, cfg: TrainConfig, hf_config: Any, total_steps: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.hf_config = hf_config
        self.total_steps = total_steps
        self.model: Any = None
        self.val_loss = MeanMetric()
        self.val_exact_match = MeanMetric()
        # A PEFT checkpoint holds only the trainable tensors (on_save_checkpoint): on resume the frozen base
        # comes from a fresh build, and the checkpoint is loaded over it without demanding the base's keys.
        self.strict_loading = cfg.peft.method == "none"

    def configure_model(self) -> None:
        """Build (and for FSDP2, shard) the model once; Lightning calls this before validate and fit."""
        if self.model is not None:
            return
        p = self.cfg.parallelism
        if p.strategy == "deepspeed":
            self._prepare_deepspeed(p.stage)
        peft = self.cfg.peft.method != "none"
        with _seeded(self.cfg.run.seed, enabled=peft and self.cfg.model.from_scratch):
            model = apply_peft(build_model(self.cfg.model, self.hf_config), self.cfg.peft)
        if p.strategy == "fsdp" and p.version == 2:
            shard_model(model, self.device_mesh["data_parallel"], p)
        self.model = model

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """PEFT runs keep only what trains (adapters, modules_to_save) plus the optimizer state: the frozen
        base is rebuilt on resume, from its hub id or local folder, or for a from-scratch base from the
        seed (configure_model). With sharded checkpoints every key stays, because a distributed
        checkpoint is read back key by key for every tensor the model has."""
        if self.cfg.peft.method == "none" or getattr(self.cfg.parallelism, "sharded_checkpoint", False):
            return
        state = checkpoint["state_dict"]
        for name, param in self.named_parameters(remove_duplicate=False):
            key = _plain_name(name)
            if not param.requires_grad and key in state:
                del state[key]

    def _prepare_deepspeed(self, stage: int) -> None:
        # Our configure_gradient_clipping leaves DeepSpeed alone (it clips from its config), but Lightning
        # warns whenever the hook is overridden.
        warnings.filterwarnings("ignore", message=".*DeepSpeed handles gradient clipping internally.*")
        if stage == 3:
            # Lightning builds the model inside `deepspeed.zero.Init`, which partitions parameters as they
            # are created; transformers loads pretrained weights into partitioned parameters only when it
            # knows the DeepSpeed config, which it holds by weak reference: keep it alive with the module.
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_deepspeed_config = HfDeepSpeedConfig(self.trainer.strategy.config)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Padded batches bring an attention mask; packed ones (trainer.data.packing) bring position ids
        that restart per document and no mask, which is what makes transformers keep documents apart.
        Only what the batch has is passed: a mask next to packed positions would undo the isolation."""
        inputs = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
        return self.model(input_ids=batch["input_ids"], use_cache=False, **inputs).logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        total, count = token_loss(self(batch), batch["labels"])
        loss = total / count.clamp(min=1)
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=batch["input_ids"].size(0))
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0], on_step=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        total, count = token_loss(logits, batch["labels"])
        self.val_loss.update(total / count.clamp(min=1), weight=count)
        self.val_exact_match.update(exact_matches(logits, batch["labels"]))

    def on_validation_epoch_end(self) -> None:
        """Logged here, against the optimizer step just taken: Lightning's own val logging uses the
        step before it (5 for a validation after step 6), which misaligns curves in MLflow."""
        # compute() reduces over data-parallel ranks, so every rank logs the same global value.
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

        Called once per optimizer step, after backward. DeepSpeed is left alone: its engine clips by the
        `gradient_clipping` of its config, and the gradients here are its partitions, not `p.grad`.
        """
        from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy

        strategy = self.trainer.strategy
        if isinstance(strategy, DeepSpeedStrategy):
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
            # fp16 AMP unscales before this hook, except for optimizers that unscale inside their step
            # (fused AdamW, our default on GPU), where Lightning refuses to clip. Unscaling here makes the
            # norm true; the scaler then tells the optimizer not to unscale again.
            scaler.unscale_(optimizer)
        norm = grad_norm(
            optimizer,
            gradient_clip_val or None,
            self.cfg.trainer.gradient_clip_norm,
            fsdp1_root=strategy.model if isinstance(strategy, FSDPStrategy) else None,
        )
        self.log("train/grad_norm", norm, on_step=True)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.cfg.optimizer, on_gpu=self.cfg.on_gpu)
        scheduler = build_scheduler(optimizer, self.cfg.scheduler, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
