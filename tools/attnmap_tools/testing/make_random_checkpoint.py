#!/usr/bin/env python3
"""Write a Hugging Face Qwen2.5-VL checkpoint folder with random weights in the real 7B or 3B shape
(or tiny.py's test shape), for benchmarks: hub-style config.json, sharded safetensors, the real Qwen
tokenizer, preprocessor config and chat template. Loads with transformers' from_pretrained and
exports with attnmap-export. RAM needed: the largest tensor (~1 GB for 7B), not the model.

    python3 -m attnmap_tools.testing.make_random_checkpoint --shape 7b --out-checkpoint /tmp/rand7b [--dtype bf16]
        [--text-layers N] [--vision-layers N] [--seed S] [--std 0.02] [--device cpu|cuda]

--text-layers / --vision-layers shrink the depth but keep the real widths (a CPU smoke test of the
7B path); the vision tower keeps the full-attention blocks below the new depth, or its last block.
"""
import argparse
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", required=True, choices=["7b", "3b", "tiny"])
    ap.add_argument("--out-checkpoint", required=True)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--text-layers", type=int, default=None, help="decoder layers (default: the shape's)")
    ap.add_argument("--vision-layers", type=int, default=None, help="vision blocks (default: the shape's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02, help="standard deviation of the random weights")
    ap.add_argument("--device", default="cpu", help="where to draw the numbers (cuda is faster; values differ)")
    ap.add_argument("--max-shard-gb", type=float, default=4.0, help="safetensors shard size limit, GiB")
    ap.add_argument("--tokenizer-json", default=None,
                    help="tokenizer.json to copy (default: tests/data/tokenizer/qwen_tokenizer.json.gz)")
    args = ap.parse_args()
    from attnmap_tools.testing.random_checkpoint import make_random_checkpoint

    t0 = time.time()
    try:
        info = make_random_checkpoint(args.out_checkpoint, args.shape, args.dtype, args.text_layers,
                                      args.vision_layers, args.seed, args.std, args.device,
                                      int(args.max_shard_gb * 2**30), args.tokenizer_json)
    except ValueError as e:
        print(f"make_random_checkpoint.py: error: {e}", file=sys.stderr)
        return 2
    cfg = info["config"]
    print(f"wrote {cfg['_name_or_path']} ({args.dtype}) to {args.out_checkpoint}: "
          f"{info['parameters'] / 1e9:.3f} B parameters, {info['bytes'] / 2**30:.2f} GiB in "
          f"{len(info['files'])} file(s), text {cfg['num_hidden_layers']} layers x {cfg['hidden_size']}, "
          f"vision {cfg['vision_config']['depth']} blocks (full attention {cfg['vision_config']['fullatt_block_indexes']}), "
          f"{time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
