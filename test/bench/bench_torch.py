#!/usr/bin/python3
"""Times the PyTorch reference BertModel (test/reference/bert_reference.py)
on a checkpoint directory, in inference mode.

  bench_torch.py DIR BATCH SEQ THREADS RUNS WARMUP
Prints one line: torch batch=.. seq=.. threads=.. runs=.. median_ms=.. min_ms=..
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bert_reference as ref  # noqa: E402


def main():
    d, B, T, threads, runs, warmup = sys.argv[1], *map(int, sys.argv[2:7])
    torch.set_num_threads(threads)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    model = ref.BertModel(cfg).eval()
    weights = ref.read_safetensors(os.path.join(d, "model.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    g = torch.Generator().manual_seed(12345)
    ids = torch.randint(0, cfg["vocab_size"], (B, T), generator=g)
    ids[:, 0] = 101
    mask = torch.ones(B, T, dtype=torch.int64)
    ms = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            model(ids, mask)
            if i >= warmup:
                ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    median = ms[runs // 2] if runs % 2 else (ms[runs // 2 - 1] + ms[runs // 2]) / 2
    print("torch batch=%d seq=%d threads=%d runs=%d median_ms=%.3f min_ms=%.3f version=%s"
          % (B, T, threads, runs, median, ms[0], torch.__version__))


if __name__ == "__main__":
    main()
