"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, transformers serve)."""
