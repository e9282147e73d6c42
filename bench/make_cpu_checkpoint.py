#!/usr/bin/env python3
"""A Llama-shaped HuggingFace checkpoint with random bf16 weights, made without
PyTorch or numpy, for CPU benchmarks on this machine:

    python3 bench/make_cpu_checkpoint.py OUT_DIR [--hidden 1024 --layers 8 --heads 16 --kv-heads 4
                                                  --ffn 2816 --vocab 32000]

Weights are uniform in about +-0.06 (random sign and mantissa, fixed small
exponents), norms are 1.0: the numbers are meaningless but well-scaled, and
the sizes are real, which is what a speed benchmark needs.
"""
import argparse
import json
import os
import struct


def random_bf16(n):
    # Random bytes masked to sign + low exponent bit + mantissa, OR'd with an
    # exponent of 2^-5: values in +-[2^-5, 2^-3). Done on one big integer so that
    # CPython processes hundreds of MB in seconds.
    raw = int.from_bytes(os.urandom(2 * n), "little")
    mask = int.from_bytes(b"\xff\x80" * n, "little")  # little-endian: low byte mantissa, high byte sign
    exp = int.from_bytes(b"\x00\x3d" * n, "little")
    return ((raw & mask) | exp).to_bytes(2 * n, "little")


def ones_bf16(n):
    return b"\x80\x3f" * n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=2816)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    hd = a.hidden // a.heads
    shapes = {"model.embed_tokens.weight": [a.vocab, a.hidden], "model.norm.weight": [a.hidden],
              "lm_head.weight": [a.vocab, a.hidden]}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": [a.heads * hd, a.hidden],
                       p + "self_attn.k_proj.weight": [a.kv_heads * hd, a.hidden],
                       p + "self_attn.v_proj.weight": [a.kv_heads * hd, a.hidden],
                       p + "self_attn.o_proj.weight": [a.hidden, a.heads * hd],
                       p + "mlp.gate_proj.weight": [a.ffn, a.hidden],
                       p + "mlp.up_proj.weight": [a.ffn, a.hidden],
                       p + "mlp.down_proj.weight": [a.hidden, a.ffn],
                       p + "input_layernorm.weight": [a.hidden],
                       p + "post_attention_layernorm.weight": [a.hidden]})
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in shapes.items():
            n = 1
            for d in shape:
                n *= d
            f.write(ones_bf16(n) if len(shape) == 1 else random_bf16(n))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.hidden,
              "num_hidden_layers": a.layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
              "intermediate_size": a.ffn, "vocab_size": a.vocab, "rms_norm_eps": 1e-5,
              "max_position_embeddings": 4096, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
              "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    print(f"{a.out}: {offset / 2**20:.0f} MiB of bf16 weights")


if __name__ == "__main__":
    main()
