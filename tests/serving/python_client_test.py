#!/usr/bin/env python3
"""kiln serve talked to by Python's own HTTP client (http.client): keep-alive
requests on one connection, chunked JSON-lines and server-sent-event streams
read incrementally, and the OpenAI schema as an OpenAI client expects it.

    python_client_test.py KILN_BINARY DEMO_MODEL_DIR
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time


def start(kiln, work):
    log = open(os.path.join(work, "log"), "w+")
    env = dict(os.environ, OPTION_CACHE_DIR=os.path.join(work, "cache"))
    proc = subprocess.Popen([kiln, "serve", "--host", "127.0.0.1", "--port", "0"], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    port = None
    for _ in range(600):
        time.sleep(0.05)
        text = open(log.name).read()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        if m:
            port = int(m.group(1))
        if port and ") ready" in text:
            return proc, port
    proc.kill()
    sys.exit("kiln serve did not become ready:\n" + open(log.name).read())


def main():
    kiln, demo = sys.argv[1], sys.argv[2]
    reference = json.load(open(os.path.join(demo, "reference.json")))
    case = reference["cases"][1]
    expected = case["generated_text"].split("<|endoftext|>")[0].split("<|im_end|>")[0]
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as work:
        proc, port = start(kiln, work)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            # Keep-alive: three requests on one connection.
            for _ in range(3):
                conn.request("POST", "/invocations", json.dumps(
                    {"inputs": case["prompt_text"], "parameters": {"max_new_tokens": 24}}),
                    {"Content-Type": "application/json"})
                r = conn.getresponse()
                body = json.loads(r.read())
                check(r.status == 200 and body["generated_text"] == expected, f"invocations: {r.status} {body}")
            # JSON lines, read as they arrive.
            conn.request("POST", "/invocations", json.dumps(
                {"inputs": case["prompt_text"], "parameters": {"max_new_tokens": 24}, "stream": True}))
            r = conn.getresponse()
            check(r.getheader("Transfer-Encoding") == "chunked", "jsonlines not chunked")
            lines = [json.loads(l) for l in r.read().decode().splitlines() if l.strip()]
            check(lines[-1].get("generated_text") == expected, f"jsonlines end: {lines[-1]}")
            check("".join(l["token"]["text"] for l in lines if "token" in l) == expected, "jsonlines tokens")
            # Server-sent events as an OpenAI client reads them.
            conn.request("POST", "/v1/chat/completions", json.dumps(
                {"model": "kiln-demo", "messages": [{"role": "user", "content": "Tell me a fortune."}],
                 "temperature": 0, "stream": True}))
            r = conn.getresponse()
            check(r.getheader("Content-Type", "").startswith("text/event-stream"), "SSE content type")
            events = [l[6:] for l in r.read().decode().split("\n") if l.startswith("data: ")]
            check(events[-1] == "[DONE]", "SSE must end with [DONE]")
            chunks = [json.loads(e) for e in events[:-1]]
            check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "first delta carries the role")
            content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
            chat_expected = reference["cases"][3]["generated_text"].split("<|im_end|>")[0]
            check(content == chat_expected, f"chat stream: {content!r}")
            check(chunks[-1]["choices"][0]["finish_reason"] == "stop", "chat finish_reason")
            check(chunks[-1]["usage"]["completion_tokens"] > 0, "usage in the last chunk")
            # A refused stream keeps its status: a JSON error, not a 200 stream carrying it.
            conn.request("POST", "/v1/completions", json.dumps({"prompt": " word" * 600, "stream": True}))
            r = conn.getresponse()
            body = r.read().decode()
            check(r.status == 400 and r.getheader("Content-Type", "").startswith("application/json")
                  and "max_input_len" in json.loads(body)["error"], f"refused stream: {r.status} {body}")
            # Completions logprobs: one per generated token.
            conn.request("POST", "/v1/completions", json.dumps(
                {"prompt": case["prompt_text"], "max_tokens": 24, "temperature": 0, "logprobs": 0}))
            r = conn.getresponse()
            body = json.loads(r.read())
            logprobs = body["choices"][0]["logprobs"] or {}
            check(r.status == 200 and len(logprobs.get("token_logprobs", [])) == body["usage"]["completion_tokens"],
                  f"completions logprobs: {body}")
            conn.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
            check(code == 0, f"exit status after SIGTERM: {code}")
    for f in failures:
        print("FAIL:", f)
    print("python client: every check held" if not failures else f"python client: {len(failures)} check(s) failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
