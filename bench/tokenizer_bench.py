#!/usr/bin/env python3
"""Encode throughput: attnmap's C++ tokenizer vs HF tokenizers, single-threaded, same text, same run.

    python3 bench/tokenizer_bench.py [--build build] [--tokenizer PATH/tokenizer.json] [--runs 5]

Builds a deterministic ~1 MB multilingual text (many distinct words, so caches do not make it
trivial), runs build/tokenizer_bench on it, then HF `Tokenizer.encode` on the whole text and on
each line, with TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1. Also checks both give the
same number of tokens.
"""
import argparse
import gzip
import json
import os
import pathlib
import platform
import random
import subprocess
import sys
import tempfile
import time

from bench_common import cpu_model  # found next to this script: the bench scripts run by file path

ROOT = pathlib.Path(__file__).resolve().parents[1]

FIXTURE = ROOT / "tests" / "data" / "tokenizer" / "qwen_tokenizer.json.gz"


def build_text(target_bytes=1_000_000, seed=1):
    rng = random.Random(seed)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"

    def latin_word():
        w = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(1, 4)))
        return w.capitalize() if rng.random() < 0.15 else w

    scripts = [
        (40, lambda: " ".join(latin_word() for _ in range(rng.randint(5, 15))) + rng.choice(".,;!?") + " "),
        (15, lambda: "".join(chr(rng.randint(0x4E00, 0x6FFF)) for _ in range(rng.randint(5, 25))) + "。"),
        (6, lambda: "".join(chr(rng.randint(0x3041, 0x3096)) for _ in range(rng.randint(4, 12))) + "、"),
        (6, lambda: " ".join("".join(chr(rng.randint(0xAC00, 0xB7FF)) for _ in range(rng.randint(1, 4)))
                             for _ in range(rng.randint(3, 8))) + ". "),
        (8, lambda: " ".join("".join(chr(rng.randint(0x430, 0x44F)) for _ in range(rng.randint(2, 9)))
                             for _ in range(rng.randint(3, 10))) + ". "),
        (4, lambda: " ".join("".join(chr(rng.randint(0x627, 0x64A)) for _ in range(rng.randint(2, 7)))
                             for _ in range(rng.randint(3, 8))) + " "),
        (4, lambda: " ".join("".join(chr(rng.randint(0x915, 0x939)) + chr(rng.choice([0x93E, 0x93F, 0x940, 0x947]))
                                     for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(3, 8))) + "। "),
        (6, lambda: f"x{rng.randint(0, 999)} = {rng.randint(0, 10**6)} * {rng.random():.4f};\n    "),
        (3, lambda: "".join(rng.choice("😀👍🏽🇺🇸✨🤖❤️") for _ in range(rng.randint(1, 4))) + " "),
        (8, lambda: "\n" * rng.randint(1, 2)),
    ]
    weights = [w for w, _ in scripts]
    parts, size = [], 0
    while size < target_bytes:
        p = rng.choices(scripts, weights)[0][1]()
        parts.append(p)
        size += len(p.encode("utf-8"))
    return "".join(parts)


def best_of(runs, fn):
    """Best wall time and best CPU time of this thread (HF encodes in the calling thread here)."""
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        result = fn()
        best_cpu = min(best_cpu, time.thread_time() - c0)
        best = min(best, time.perf_counter() - t0)
    return best, best_cpu, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the test fixture)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    from tokenizers import Tokenizer, __version__ as hf_version

    with tempfile.TemporaryDirectory() as tmp:
        tok_path = args.tokenizer
        if tok_path is None:
            tok_path = os.path.join(tmp, "tokenizer.json")
            pathlib.Path(tok_path).write_bytes(gzip.decompress(FIXTURE.read_bytes()))
        text = build_text()
        text_path = os.path.join(tmp, "text.txt")
        pathlib.Path(text_path).write_bytes(text.encode("utf-8"))
        mb = len(text.encode("utf-8")) / 1e6

        cmd = [os.path.join(args.build, "tokenizer_bench"), tok_path, text_path, str(args.runs)]
        ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

        t0 = time.perf_counter()
        hf = Tokenizer.from_file(tok_path)
        hf_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        hf.encode(text)
        hf_first = time.perf_counter() - t0
        whole_s, whole_cpu, enc = best_of(args.runs, lambda: hf.encode(text).ids)
        lines = text.splitlines(keepends=True)
        lines_s, lines_cpu, per_line = best_of(args.runs, lambda: [hf.encode(l).ids for l in lines])

    print(f"machine: {platform.node()}, nproc={os.cpu_count()}, cpu={cpu_model()}")
    print(f"command: {' '.join(cmd)}  vs  tokenizers {hf_version} Tokenizer.encode (python {sys.version.split()[0]}), "
          f"TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1, best of {args.runs}")
    print(f"text: {mb:.2f} MB, {len(lines)} lines")
    print(f"{'':24}{'attnmap':>12}{'HF':>12}")
    print(f"{'load tokenizer.json s':24}{ours['load_s']:12.3f}{hf_load:12.3f}")
    print(f"{'whole text, cold MB/s':24}{ours['whole_first_mb_s']:12.2f}{mb / hf_first:12.2f}")
    print(f"{'whole text MB/s':24}{ours['whole_mb_s']:12.2f}{mb / whole_s:12.2f}")
    print(f"{'per line MB/s':24}{ours['lines_mb_s']:12.2f}{mb / lines_s:12.2f}")
    print(f"{'whole text MB/s of CPU':24}{ours['whole_cpu_mb_s']:12.2f}{mb / whole_cpu:12.2f}")
    print(f"{'per line MB/s of CPU':24}{ours['lines_cpu_mb_s']:12.2f}{mb / lines_cpu:12.2f}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (wall MB/s is unreliable when it exceeds nproc)")
    hf_tokens_lines = sum(len(x) for x in per_line)
    same = ours["tokens_whole"] == len(enc) and ours["tokens_lines"] == hf_tokens_lines
    print(f"tokens: attnmap {ours['tokens_whole']} / {ours['tokens_lines']}, HF {len(enc)} / {hf_tokens_lines}"
          f"{'' if same else '  MISMATCH'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
