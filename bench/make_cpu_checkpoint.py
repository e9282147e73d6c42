#!/usr/bin/env python3
"""A Llama-shaped HuggingFace checkpoint with random weights (bf16 by default),
made without PyTorch or numpy, for CPU benchmarks on this machine:

    python3 bench/make_cpu_checkpoint.py OUT_DIR [--hidden 1024 --layers 8 --heads 16 --kv-heads 4
                                                  --ffn 2816 --vocab 32000]
                                                 [--dtype bf16|fp16|fp32] [--shard-mb N]

--shard-mb N splits the weights into model-0000i-of-0000n.safetensors shards of
about N MiB with a model.safetensors.index.json, as HuggingFace saves large models.

Weights are uniform in about +-0.06 (random sign and mantissa, fixed small
exponents), norms are 1.0: the numbers are meaningless but well-scaled, and
the sizes are real, which is what a speed benchmark needs.
"""
import argparse
import json
import os
import struct

# Per dtype: safetensors code, bytes per element, the little-endian mask keeping
# sign + low exponent bit + mantissa, the exponent of 2^-5, 1.0, config's torch_dtype.
DTYPES = {
    "bf16": ("BF16", 2, b"\xff\x80", b"\x00\x3d", b"\x80\x3f", "bfloat16"),
    "fp16": ("F16", 2, b"\xff\x87", b"\x00\x28", b"\x00\x3c", "float16"),
    "fp32": ("F32", 4, b"\xff\xff\xff\x80", b"\x00\x00\x00\x3d", b"\x00\x00\x80\x3f", "float32"),
}


def random_values(dtype, n):
    # Random bytes masked to sign + low exponent bit + mantissa, OR'd with an
    # exponent of 2^-5: values in +-[2^-5, 2^-3). The masks work byte by byte,
    # so each byte position goes through one translation table, at C speed.
    _, size, mask, exp, _, _ = DTYPES[dtype]
    data = bytearray(os.urandom(size * n))
    for i in range(size):
        if mask[i] != 0xFF or exp[i] != 0:
            table = bytes((b & mask[i]) | exp[i] for b in range(256))
            data[i::size] = data[i::size].translate(table)
    return bytes(data)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def write_safetensors(path, dtype, shapes):
    code, size = DTYPES[dtype][:2]
    header, offset = {}, 0
    for name, shape in shapes.items():
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + size * numel(shape)]}
        offset += size * numel(shape)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in shapes.items():
            n = numel(shape)
            f.write(DTYPES[dtype][4] * n if len(shape) == 1 else random_values(dtype, n))
    return offset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=2816)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--shard-mb", type=int, default=0, help="shards of about this many MiB (0: one file)")
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
    os.makedirs(a.out, exist_ok=True)
    size = DTYPES[a.dtype][1]
    groups, group_bytes = [{}], 0  # the tensors of each file, in order
    for name, shape in shapes.items():
        n = size * numel(shape)
        if a.shard_mb and groups[-1] and group_bytes + n > a.shard_mb * 2**20:
            groups, group_bytes = groups + [{}], 0
        groups[-1][name] = shape
        group_bytes += n
    total = 0
    if not a.shard_mb:
        total = write_safetensors(os.path.join(a.out, "model.safetensors"), a.dtype, groups[0])
    else:
        weight_map = {}
        for i, group in enumerate(groups):
            file = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
            total += write_safetensors(os.path.join(a.out, file), a.dtype, group)
            weight_map.update({name: file for name in group})
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        json.dump(index, open(os.path.join(a.out, "model.safetensors.index.json"), "w"), indent=1)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.hidden,
              "num_hidden_layers": a.layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
              "intermediate_size": a.ffn, "vocab_size": a.vocab, "rms_norm_eps": 1e-5,
              "max_position_embeddings": 4096, "rope_theta": 10000.0, "torch_dtype": DTYPES[a.dtype][5],
              "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    print(f"{a.out}: {total / 2**20:.0f} MiB of {a.dtype} weights in {len(groups)} file(s)")


if __name__ == "__main__":
    main()
