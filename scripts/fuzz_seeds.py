#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz) from the shared fixtures and a few inline samples.

Usage: fuzz_seeds.py FIXTURES_DIR OUT_DIR   (OUT_DIR/<target>/ gets the seeds; nothing large is written)
"""
import glob
import json
import os
import struct
import sys
import zipfile


def write(out_dir, target, name, data):
    os.makedirs(os.path.join(out_dir, target), exist_ok=True)
    with open(os.path.join(out_dir, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors_seeds(fixtures, out):
    # The headers of the fixture files, cut down to the first tensors that fit in 16 KiB, offsets rewritten.
    for path in sorted(glob.glob(os.path.join(fixtures, "models", "*", "*.safetensors")))[:12]:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        kept, offset = {}, 0
        if "__metadata__" in header:
            kept["__metadata__"] = header.pop("__metadata__")
        for name, entry in sorted(header.items()):
            size = entry["data_offsets"][1] - entry["data_offsets"][0]
            if offset + size > 16384 or len(kept) >= 6:
                continue
            kept[name] = dict(entry, data_offsets=[offset, offset + size])
            offset += size
        text = json.dumps(kept).encode()
        model = os.path.basename(os.path.dirname(path))
        write(out, "safetensors", f"{model}-{os.path.basename(path)}",
              struct.pack("<Q", len(text)) + text + bytes(offset))


def pickle_seeds(fixtures, out):
    for path in sorted(glob.glob(os.path.join(fixtures, "models", "*", "*.bin"))):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("data.pkl"):
                    write(out, "pickle_reader", os.path.basename(path) + ".pkl", z.read(name))


def config_seeds(fixtures, out):
    for path in sorted(glob.glob(os.path.join(fixtures, "models", "*", "config.json"))):
        with open(path, "rb") as f:
            write(out, "config_spec", os.path.basename(os.path.dirname(path)) + ".json", f.read())


def trimmed_tokenizer(doc, keep=400):
    # A fixture tokenizer.json cut to its first `keep` ids and the merges among them: small seeds run fast.
    model = doc.get("model", {})
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        model["vocab"] = {t: i for t, i in vocab.items() if i < keep}
        merges = []
        for m in model.get("merges", []):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            if a in model["vocab"] and b in model["vocab"] and a + b in model["vocab"]:
                merges.append(m)
        model["merges"] = merges[:keep]
    elif isinstance(vocab, list):
        model["vocab"] = vocab[:keep]
    doc["added_tokens"] = [t for t in doc.get("added_tokens", []) if t.get("id", 0) < keep + 64][:16]
    return doc


def tokenizer_seeds(fixtures, out):
    for path in sorted(glob.glob(os.path.join(fixtures, "tokenizers", "*", "tokenizer.json"))):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        name = os.path.basename(os.path.dirname(path))
        write(out, "tokenizer_json", name + ".json", json.dumps(trimmed_tokenizer(doc), ensure_ascii=False))


def jinja_seeds(fixtures, repo, out):
    configs = glob.glob(os.path.join(fixtures, "tokenizers", "*", "tokenizer_config.json"))
    configs += glob.glob(os.path.join(repo, "demo", "model", "tokenizer_config.json"))
    for path in sorted(configs):
        with open(path, encoding="utf-8") as f:
            template = json.load(f).get("chat_template")
        if isinstance(template, list):
            template = next((t["template"] for t in template if t.get("name") == "default"), None)
        if isinstance(template, str):
            write(out, "jinja", os.path.basename(os.path.dirname(path)) + ".jinja", template)
    samples = {
        "chatml.jinja": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "builtins.jinja": "{% set ns = namespace(x=0) %}{% macro m(a, b=2) %}{{ a ~ b ~ varargs|length }}"
                          "{% endmacro %}{% for m2 in messages if m2.role != 'tool' %}{% set ns.x = ns.x + 1 %}"
                          "{{ loop.index }}{{ m2.content|trim|upper|replace('A', 'b')|center(12) }}"
                          "{{ m2|tojson(indent=2) }}{{ '%-5s|%03d' % (m2.role, loop.index0) }}"
                          "{{ m2.content.split(' ')|join(',') }}{{ m(1) }}{% endfor %}{{ ns.x }}"
                          "{{ tools|map(attribute='function')|selectattr('name', 'equalto', 'add')|list }}"
                          "{{ range(3)|batch(2, 0)|list }}{{ {'a': 1}.items()|list }}{{ 'x'.ljust(3, '-') }}"
                          "{% filter upper %}{{ bos_token }}{% endfilter %}{% if messages[-1] is defined %}"
                          "{{ raise_exception('bad') if false else eos_token }}{% endif %}",
    }
    for name, text in samples.items():
        write(out, "jinja", name, text)


def inline_seeds(out):
    write(out, "http_request_parser", "get", b"\x40GET /ping?a=1&b=%20x HTTP/1.1\r\nHost: x\r\n\r\n")
    write(out, "http_request_parser", "post", b"\x07POST /invocations HTTP/1.1\r\nContent-Type: application/json\r\n"
          b"Content-Length: 17\r\n\r\n{\"inputs\": \"hi\"}\nGET / HTTP/1.0\r\n\r\n")
    write(out, "http_request_parser", "chunked", b"\x40POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
          b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0;x=y\r\nTrailer: 1\r\n\r\n")
    write(out, "properties_file", "serving.properties",
          "# comment\n! also\noption.model_id=s3://bucket/prefix\noption.tensor_parallel_degree = 2\n"
          "option.dtype:fp16\nengine MPI\nkey\\ with\\ spaces=va\\\n    lue\\u0041\\t\\=\n")


def manifest_seeds(build_dir, out):
    seed_tool = os.path.join(build_dir, "fuzz", "make_manifest_seed")
    if os.path.exists(seed_tool):
        os.makedirs(os.path.join(out, "manifest"), exist_ok=True)
        os.system(f"'{seed_tool}' '{os.path.join(out, 'manifest', 'engine.json')}'")


def main():
    fixtures, out = sys.argv[1], sys.argv[2]
    build_dir = sys.argv[3] if len(sys.argv) > 3 else "build-fuzz"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isdir(fixtures):
        safetensors_seeds(fixtures, out)
        pickle_seeds(fixtures, out)
        config_seeds(fixtures, out)
        tokenizer_seeds(fixtures, out)
    jinja_seeds(fixtures, repo, out)
    inline_seeds(out)
    manifest_seeds(build_dir, out)


if __name__ == "__main__":
    main()
