"""vLLM in this process (the offline ``LLM`` class) as a VLM backend."""
