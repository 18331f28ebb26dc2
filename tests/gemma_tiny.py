"""A tiny, randomly initialised Gemma 4 (model, tokenizer, real Gemma4Processor) built offline for tests.

Why: the engine must be tested through the same ``--model DIR`` path users take with real weights, on a CPU, with
nothing downloaded. The architecture classes, processor and chat template are the real ones; only the sizes are
small and the weights random (constrained decoding still has to yield schema-valid JSON). Recipe and constraints:
../shared/notes/gemma4-transformers.md section 5.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

SPECIAL = {"image_token": "<|image|>", "boi_token": "<|image>", "eoi_token": "<image|>",
           "audio_token": "<|audio|>", "boa_token": "<|audio>", "eoa_token": "<audio|>",
           "sot_token": "<|turn>", "eot_token": "<turn|>", "soc_token": "<|channel>", "eoc_token": "<channel|>",
           "think_token": "<|think|>", "escape_token": '<|"|>', "str_token": "<|tool_response>",
           "etr_token": "<tool_response|>", "stc_token": "<|tool_call>", "etc_token": "<tool_call|>",
           "std_token": "<|tool>", "etd_token": "<tool|>"}

#: Gemma-4-style template (the real one ships as chat_template.jinja): thinking off pre-fills an empty thought.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if (enable_thinking is defined and enable_thinking) or messages[0]['role'] == 'system' -%}"
    "{{- '<|turn>system\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking -%}{{- '<|think|>' -}}{%- endif -%}"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] if messages[0]['content'] is string"
    " else messages[0]['content'][0]['text'] -}}{%- endif -%}{{- '<turn|>\\n' -}}{%- endif -%}"
    "{%- for m in messages if m['role'] != 'system' -%}"
    "{{- '<|turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' -}}"
    "{%- if m['content'] is string -%}{{- m['content'] | trim -}}{%- else -%}{%- for c in m['content'] -%}"
    "{%- if c['type'] == 'image' -%}{{- '\\n\\n<|image|>\\n\\n' -}}{%- elif c['type'] == 'text' -%}"
    "{{- c['text'] | trim -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}{{- '<turn|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|turn>model\\n' -}}"
    "{%- if not (enable_thinking | default(false)) -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}"
    "{%- endif -%}")


def _corpus() -> list[str]:
    """Text the tests' prompts are made of, so the trained BPE keeps prompts short (fast CPU prefill)."""
    from docpipe.engines.vlm.prompting import SUMMARY_INSTRUCTIONS, SYSTEM_PROMPT, extraction_instructions
    from docpipe.schemas import resolve

    texts = [SYSTEM_PROMPT, SUMMARY_INSTRUCTIONS]
    for name in ("invoice", "receipt", "document"):
        texts.append(extraction_instructions(resolve(name), ["Invoice INV-2024-0042 total 30,35 EUR"], 2))
    texts.append("Rechnung Rechnungsnummer Datum Betrag Gesamtbetrag MwSt Zwischensumme Invoice Date Total "
                 "Subtotal Tax Quantity Unit Price Amount Description Receipt Facture Montant")
    return texts


def build_tokenizer(vocab_size: int = 1200):
    """A GemmaTokenizer (BPE with byte fallback, Gemma's normaliser) with every Gemma 4 control token; its merges
    are trained here, in a second, on the prompts' own text."""
    from tokenizers import Tokenizer, models, normalizers, trainers
    from transformers import GemmaTokenizer

    base = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *SPECIAL.values(), "<|video|>"]
    base += [f"<0x{b:02X}>" for b in range(256)]  # byte-fallback pieces: any text encodes
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    alphabet = list("▁\n" + string.ascii_letters + string.digits + string.punctuation)
    bpe.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=base,
                                                           initial_alphabet=alphabet, show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = GemmaTokenizer(vocab=model["vocab"], merges=merges, add_bos_token=False, padding_side="left",
                         extra_special_tokens=SPECIAL)
    tok.add_special_tokens({"additional_special_tokens": ["<|video|>"]})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(tok, variant: str = "dense", seed: int = 0, **text_overrides):
    """The tiny model. variant: "dense" (31B-style: k=v attention, bidirectional vision mask), "moe" (26B-A4B
    style: experts beside the shared MLP), "e" (E2B/E4B style: per-layer embeddings, kv-shared layers, no k=v).
    text_overrides replace text-config values (scripts/bench_compile.py: a checkpoint's layer layout)."""
    import torch
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration, Gemma4TextConfig, Gemma4VisionConfig

    ids = tok.convert_tokens_to_ids
    large = variant in ("dense", "moe")
    moe = variant == "moe"
    n_layers = 2 if large else 4
    text = Gemma4TextConfig(**{
        **dict(vocab_size=len(tok), vocab_size_per_layer_input=len(tok),
               hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1,
               head_dim=32, global_head_dim=32, num_global_key_value_heads=1,
               num_hidden_layers=n_layers,
               layer_types=(["sliding_attention", "full_attention"] * (n_layers // 2)), sliding_window=64,
               hidden_size_per_layer_input=0 if large else 16, max_position_embeddings=32768,
               final_logit_softcapping=30.0,
               use_bidirectional_attention="vision" if large else None, attention_k_eq_v=large,
               num_kv_shared_layers=0 if large else 2, use_double_wide_mlp=not large,
               enable_moe_block=moe, num_experts=4 if moe else None, top_k_experts=2 if moe else None,
               moe_intermediate_size=32 if moe else None,
               pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
               eos_token_id=[tok.eos_token_id, ids("<turn|>")]),
        **text_overrides})
    vision = Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, head_dim=16,
                                patch_size=16, pooling_kernel_size=3, position_embedding_size=256)
    cfg = Gemma4Config(text_config=text, vision_config=vision, audio_config=None,
                       image_token_id=ids("<|image|>"), boi_token_id=ids("<|image>"), eoi_token_id=ids("<image|>"),
                       video_token_id=ids("<|video|>"), audio_token_id=ids("<|audio|>"),
                       boa_token_id=ids("<|audio>"), eoa_token_index=ids("<audio|>"))
    torch.manual_seed(seed)
    model = Gemma4ForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = text.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    return model


def build_processor(tok, max_soft_tokens: int = 280):
    """The real Gemma4Processor around the tokenizer (needs torchvision for its video processor)."""
    from transformers import Gemma4AudioFeatureExtractor, Gemma4ImageProcessorPil, Gemma4Processor, Gemma4VideoProcessor

    return Gemma4Processor(feature_extractor=Gemma4AudioFeatureExtractor(),
                           image_processor=Gemma4ImageProcessorPil(max_soft_tokens=max_soft_tokens),
                           tokenizer=tok, video_processor=Gemma4VideoProcessor(), chat_template=CHAT_TEMPLATE)


def save_tiny(folder: Path, variant: str = "dense") -> Path:
    """Build and ``save_pretrained`` model + processor into folder: what ``--model DIR`` loads."""
    tok = build_tokenizer()
    model = build_model(tok, variant)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    build_processor(tok).save_pretrained(folder)
    return folder
