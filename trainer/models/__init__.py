"""Models: build Hugging Face models and tokenizers, PEFT, the LightningModule, parameter accounting."""
