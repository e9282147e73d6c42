#!/usr/bin/env python3
"""Trains kiln's demo model: a small Llama with its own byte-level BPE
tokenizer, on the fortune cookies of Debian's `fortunes` packages. Runs on the
GPU machine (PyTorch, transformers, tokenizers) in a few minutes:

    python3 demo/train_demo.py CORPUS.txt OUT_DIR [--steps 4000] [--seconds 300]

CORPUS.txt comes from demo/make_corpus.py. OUT_DIR receives a HuggingFace
checkpoint (config.json, generation_config.json, fp16 model.safetensors,
tokenizer.json, tokenizer_config.json with a ChatML chat template) and a
reference in the format of ../shared/fixtures (reference.json,
reference.safetensors: greedy continuations and float64 logits computed by
transformers on the saved fp16 weights), so `kiln verify` can check an engine
built from it. Half the training documents are plain fortunes, half a ChatML
conversation asking for one, so both `generate --prompt` and chat produce
fortunes.
"""
import argparse
import json
import math
import os
import random
import time

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

END_OF_TEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
ASKS = ["Tell me a fortune.", "Give me a fortune cookie.", "Say something wise.", "Tell me a joke.",
        "What does the future hold?", "Share a quote.", "Cheer me up.", "Any advice for today?"]
REFERENCE_PROMPTS = ["The meaning of life is", "A computer", "Love is",
                     "<|im_start|>user\nTell me a fortune.<|im_end|>\n<|im_start|>assistant\n"]


def chat(ask, answer=None):
    text = f"{IM_START}user\n{ask}{IM_END}\n{IM_START}assistant\n"
    return text if answer is None else text + f"{answer}{IM_END}\n"


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT, IM_START, IM_END],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def greedy_reference(model, prompt_ids, max_new):
    """As ../shared/fixtures/make_fixtures.py: greedy by repeated full forwards in
    float64, then one teacher-forced forward over prompt + continuation."""
    seq, margins = list(prompt_ids), []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
            top = torch.topk(logits, 2).values
            margins.append(float(top[0] - top[1]))
            seq.append(int(torch.argmax(logits)))
        full = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0].to(torch.float32)
    return seq[len(prompt_ids):], full, margins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    random.seed(0)
    torch.manual_seed(0)
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, "train_log.txt"), "w")

    def say(*parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        log.write(line + "\n")

    fortunes = [f for f in open(a.corpus, encoding="utf-8").read().split("\n%\n") if f.strip()]
    random.shuffle(fortunes)
    held = fortunes[: len(fortunes) // 50]
    train = fortunes[len(held):]
    tok = train_tokenizer(train, a.vocab)
    ids_of = {t: tok.token_to_id(t) for t in (END_OF_TEXT, IM_START, IM_END)}
    say("tokenizer:", tok.get_vocab_size(), "tokens", ids_of)

    def documents(items):
        docs = []
        for f in items:
            docs.append(f + END_OF_TEXT if random.random() < 0.5 else chat(random.choice(ASKS), f) + END_OF_TEXT)
        return docs

    def stream(items):
        out = []
        for enc in tok.encode_batch(documents(items)):
            out.extend(enc.ids)
        return torch.tensor(out, dtype=torch.long)

    train_ids, held_ids = stream(train), stream(held)
    say("tokens: train", train_ids.numel(), "held out", held_ids.numel())

    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512, rope_theta=10000.0,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=ids_of[END_OF_TEXT],
                         eos_token_id=[ids_of[IM_END], ids_of[END_OF_TEXT]])
    model = LlamaForCausalLM(config).cuda()
    say("parameters:", sum(p.numel() for p in model.parameters()))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 100

    def lr_at(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, a.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    train_gpu, held_gpu = train_ids.cuda(), held_ids.cuda()

    def batch(data):
        starts = torch.randint(0, data.numel() - a.seq - 1, (a.batch,), device=data.device)
        x = torch.stack([data[s:s + a.seq + 1] for s in starts.tolist()])
        return x[:, :-1], x[:, 1:]

    def held_loss():
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            losses = []
            for _ in range(8):
                x, y = batch(held_gpu)
                logits = model(input_ids=x).logits
                losses.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten()).item())
        model.train()
        return sum(losses) / len(losses)

    start = time.time()
    step = 0
    for step in range(a.steps):
        x, y = batch(train_gpu)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps - 1:
            say(f"step {step} loss {loss.item():.3f} held-out {held_loss():.3f} {time.time() - start:.0f}s")
        if time.time() - start > a.seconds:
            say(f"time limit at step {step}")
            break
    say(f"trained {step + 1} steps in {time.time() - start:.0f}s; held-out loss {held_loss():.3f}")

    # The checkpoint: fp16 weights, as a hub checkpoint would ship.
    model = model.cpu().to(torch.float16)
    model.save_pretrained(a.out, safe_serialization=True)
    GenerationConfig(bos_token_id=ids_of[END_OF_TEXT], eos_token_id=[ids_of[IM_END], ids_of[END_OF_TEXT]],
                     do_sample=False, max_new_tokens=64).save_pretrained(a.out)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": END_OF_TEXT, "eos_token": IM_END,
               "pad_token": END_OF_TEXT, "unk_token": None, "model_max_length": 512, "add_bos_token": False,
               "clean_up_tokenization_spaces": False, "chat_template": CHATML},
              open(os.path.join(a.out, "tokenizer_config.json"), "w"), indent=1)
    for extra in ("chat_template.jinja", "special_tokens_map.json"):
        if os.path.exists(os.path.join(a.out, extra)):
            os.remove(os.path.join(a.out, extra))

    # The reference, computed as the fixtures' are: the fp16 weights in float64.
    model = model.to(torch.float64).eval()
    tensors, cases = {}, []
    for i, text in enumerate(REFERENCE_PROMPTS):
        prompt = tok.encode(text).ids
        generated, logits, margins = greedy_reference(model, prompt, 24)
        tensors[f"prompt_{i}"] = torch.tensor(prompt, dtype=torch.int32)
        tensors[f"generated_{i}"] = torch.tensor(generated, dtype=torch.int32)
        tensors[f"logits_{i}"] = logits.contiguous()
        cases.append({"prompt": prompt, "generated": generated, "greedy_margins": margins, "prompt_text": text,
                      "generated_text": tok.decode(generated, skip_special_tokens=False)})
        say(f"reference {i}: {text!r} -> {tok.decode(generated, skip_special_tokens=False)!r}")
    save_file(tensors, os.path.join(a.out, "reference.safetensors"))
    json.dump({"name": "kiln-demo", "source": "transformers.LlamaForCausalLM (demo/train_demo.py)",
               "features": ["rmsnorm", "rope-neox", "gqa", "swiglu", "tied-embeddings", "fp16-on-disk"],
               "vocab_size": tok.get_vocab_size(), "cases": cases},
              open(os.path.join(a.out, "reference.json"), "w"), indent=1)
    log.close()


if __name__ == "__main__":
    main()
