"""Our own tiny random Gemma 4 for the server tests (recipe: shared/notes/gemma4-transformers.md section 5).

The model builder is kept here rather than shared with the in-process engine's so that the served model, and its
(deterministic, garbage) answers, only change when this file does.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gemma_tiny import CHAT_TEMPLATE, SPECIAL  # noqa: E402  (shared constants; the model builder stays here)


def save_tiny(folder: Path, max_soft_tokens: int = 280) -> Path:
    """Tokenizer, ~170k-parameter model and real Gemma4Processor, saved where ``transformers serve`` loads them."""
    import torch
    from transformers import (
        Gemma4AudioFeatureExtractor,
        Gemma4Config,
        Gemma4ForConditionalGeneration,
        Gemma4ImageProcessorPil,
        Gemma4Processor,
        Gemma4TextConfig,
        Gemma4VideoProcessor,
        Gemma4VisionConfig,
        GemmaTokenizer,
    )

    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *SPECIAL.values(),
                                         "<|video|>"])}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for ch in "▁\n" + string.ascii_letters + string.digits + string.punctuation:
        vocab.setdefault(ch, len(vocab))
    tok = GemmaTokenizer(vocab=vocab, merges=[], add_bos_token=False, padding_side="left",
                         extra_special_tokens=SPECIAL)
    tok.add_special_tokens({"additional_special_tokens": ["<|video|>"]})
    tok.chat_template = CHAT_TEMPLATE
    ids = tok.convert_tokens_to_ids
    text = Gemma4TextConfig(
        vocab_size=len(tok), vocab_size_per_layer_input=len(tok), hidden_size=64, intermediate_size=128,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, global_head_dim=32, num_global_key_value_heads=1,
        num_hidden_layers=2, layer_types=["sliding_attention", "full_attention"], sliding_window=64,
        hidden_size_per_layer_input=16, max_position_embeddings=32768, final_logit_softcapping=30.0,
        use_bidirectional_attention="vision", attention_k_eq_v=True, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=[tok.eos_token_id, ids("<turn|>")])
    vision = Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, head_dim=16, patch_size=16, pooling_kernel_size=3,
                                position_embedding_size=256)
    cfg = Gemma4Config(text_config=text, vision_config=vision, audio_config=None,
                       image_token_id=ids("<|image|>"), boi_token_id=ids("<|image>"), eoi_token_id=ids("<image|>"),
                       video_token_id=ids("<|video|>"), audio_token_id=ids("<|audio|>"),
                       boa_token_id=ids("<|audio>"), eoa_token_index=ids("<audio|>"))
    torch.manual_seed(0)
    model = Gemma4ForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = text.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.do_sample = False
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    Gemma4Processor(feature_extractor=Gemma4AudioFeatureExtractor(),
                    image_processor=Gemma4ImageProcessorPil(max_soft_tokens=max_soft_tokens), tokenizer=tok,
                    video_processor=Gemma4VideoProcessor(), chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    return folder
