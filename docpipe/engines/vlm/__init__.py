"""What the vision-language engines share: one pipeline (``engine.VlmEngine``) over a small ``backend.Backend``.

``feed`` renders and groups pages, ``messages`` and ``prompting`` build the chats, ``answers`` parses, checks and
merges answers (the one merge rule), ``fanout`` sends requests with bounded concurrency, ``types`` holds the values
that travel between them. Backends: ``gemma`` (in-process), ``openai`` (any OpenAI-compatible server), ``vllm``.
"""
