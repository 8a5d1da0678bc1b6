"""One completion of prompt ids, as `trainer generate` and `trainer chat` both decode it.

Why one function: the seed set right before decoding (so a prompt's completion does not depend on what
came before it), the streamer, and the cut at eos decide what a user sees and what a chat keeps in its
history; two copies would drift, and then a chat reply would no longer equal `trainer generate`'s
completion of the same prompt, which is how the chat is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def completion(
    model: Any,
    tokenizer: Any,
    ids: list[int],
    seed: int,
    options: dict[str, Any],
    streaming: bool,
    stop: Callable[[], bool] | None = None,
) -> str:
    """The completion of `ids`: decoded without special tokens and cut at the first eos.

    `streaming` prints tokens to stdout as they come, with a newline at the end (the caller prints the
    text otherwise). `stop` is asked after every token; when it says yes, decoding ends there and the text
    so far is the completion (Ctrl-C in a chat).
    """
    import torch
    from transformers import StoppingCriteriaList, TextStreamer, set_seed

    set_seed(seed)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True) if streaming else None
    criteria = StoppingCriteriaList([_criterion(stop)]) if stop is not None else None
    inputs = torch.tensor([ids], device=model.device)
    with torch.no_grad():
        out = model.generate(
            input_ids=inputs,
            attention_mask=torch.ones_like(inputs),
            streamer=streamer,
            stopping_criteria=criteria,
            **options,
        )
    new = out[0, len(ids) :].tolist()
    eos = tokenizer.eos_token_id
    if eos in new:
        new = new[: new.index(eos)]
    return tokenizer.decode(new, skip_special_tokens=True)


def _criterion(stop: Callable[[], bool]) -> Any:
    """A transformers StoppingCriteria that ends decoding when `stop()` is true (built lazily: the
    base class lives in transformers, which this module imports only when decoding)."""
    import torch
    from transformers import StoppingCriteria

    class Asked(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), stop(), dtype=torch.bool, device=input_ids.device)

    return Asked()
