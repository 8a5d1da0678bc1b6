"""Data: read records, render prompts with label masks, tokenize, batch."""
