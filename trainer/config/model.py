"""`model:` which model to train (mirrors conf/model/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from trainer.config.base import StrictModel


class LlamaArchitecture(StrictModel):
    """Shape of a Llama model built from scratch (random init); the vocabulary comes from the tokenizer."""

    family: Literal["llama"] = Field("llama", description="Architecture family (only llama today).")
    hidden_size: PositiveInt = Field(128, description="Width of the residual stream.")
    intermediate_size: PositiveInt = Field(344, description="Width of the MLP.")
    num_hidden_layers: PositiveInt = Field(4, description="Number of decoder layers.")
    num_attention_heads: PositiveInt = Field(4, description="Query heads per layer.")
    num_key_value_heads: PositiveInt | None = Field(
        None, description="KV heads (GQA); null = same as query heads."
    )
    max_position_embeddings: PositiveInt = Field(512, description="Longest sequence the model supports.")
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base frequency.")
    tie_word_embeddings: bool = Field(True, description="Share input and output embeddings.")

    @model_validator(mode="after")
    def _heads_divide(self) -> LlamaArchitecture:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                f"{self.num_attention_heads}; pick a head count that divides it"
            )
        kv = self.num_key_value_heads or self.num_attention_heads
        if self.num_attention_heads % kv:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} is not divisible by num_key_value_heads={kv}"
            )
        return self


class ModelConfig(StrictModel):
    name_or_path: str | None = Field(
        None, description="Hub id (e.g. meta-llama/Llama-3.2-1B) or local folder with config.json + weights."
    )
    from_scratch: bool = Field(
        False, description="Random init from `architecture` instead of loading weights."
    )
    architecture: LlamaArchitecture | None = Field(None, description="Model shape when from_scratch is true.")
    tokenizer: str | None = Field(
        None, description="Tokenizer hub id or folder; null = same as name_or_path."
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Dtype of the weights.")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flex_attention"] = Field(
        "sdpa",
        description="Attention kernel: sdpa, eager, flash_attention_2 (CUDA + flash-attn), or "
        "flex_attention (torch's compiled kernel; CUDA for training). All mask packed documents apart.",
    )
    quantize: Literal["nf4", "fp4", "int8"] | None = Field(
        None, description="Load the base weights quantized with bitsandbytes (CUDA; for peft=qlora)."
    )
    trust_remote_code: bool = Field(
        False, description="Allow model code from the hub; off unless you set it."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    compile: bool = Field(
        False,
        description="torch.compile the model in place once built (slow first steps, faster later ones).",
    )
    loss_chunk_tokens: int | None = Field(
        None,
        ge=64,
        description="Compute the output layer and cross entropy this many trained tokens at a time, again "
        "in backward, so the tokens x vocabulary logits never exist at once (a 128k vocabulary makes them "
        "the largest activation). Same loss and gradients; null = all at once.",
    )
    added_tokens: list[str] = Field(
        default_factory=list,
        description="Tokens to add to the tokenizer (`<|...|>` ones as special tokens); the embeddings grow "
        "to match. With LoRA, also set peft.modules_to_save=[embed_tokens,lm_head].",
    )

    @model_validator(mode="after")
    def _source_is_known(self) -> ModelConfig:
        if self.from_scratch and self.architecture is None and self.name_or_path is None:
            raise ValueError(
                "from_scratch=true needs `architecture` or a `name_or_path` to read config.json from"
            )
        if not self.from_scratch and self.name_or_path is None:
            raise ValueError("name_or_path is null: set a hub id or local folder, or from_scratch=true")
        if self.tokenizer is None and self.name_or_path is None:
            raise ValueError(
                "tokenizer is null and there is no name_or_path to take it from: set model.tokenizer"
            )
        return self

    @field_validator("added_tokens")
    @classmethod
    def _tokens_are_new_and_distinct(cls, tokens: list[str]) -> list[str]:
        if any(not t for t in tokens):
            raise ValueError("an added token is empty; remove it")
        seen = [t for i, t in enumerate(tokens) if t in tokens[:i]]
        if seen:
            raise ValueError(f"{seen[0]!r} is listed twice; list each token once")
        return tokens

    @property
    def built_from_architecture(self) -> bool:
        """Random init from `architecture`: `name_or_path`, if set, is read only for the tokenizer."""
        return self.from_scratch and self.architecture is not None

    @property
    def label(self) -> str:
        """The model as the summaries name it."""
        if self.built_from_architecture or not self.name_or_path:
            return "built-in tiny llama"
        return self.name_or_path

    @property
    def tokenizer_source(self) -> str:
        return self.tokenizer or self.name_or_path  # type: ignore[return-value]
