"""Gemma 4 in-process (Hugging Face transformers): model choice, settings, page preparation, batching."""
