#!/usr/bin/env python3
"""Write a tiny random Qwen2.5-VL or Qwen2-VL checkpoint folder (real Qwen tokenizer, small dims) for tests/demos.

    python3 -m attnmap_tools.testing.make_tiny_checkpoint --seed 0 --out-checkpoint /tmp/tiny [--untied] [--focus-layer N]
        [--released-generation-config] [--family qwen2_5_vl|qwen2_vl]
"""
import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-checkpoint", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--untied", action="store_true", help="separate lm_head instead of tied embeddings")
    ap.add_argument("--tokenizer-json", default=None,
                    help="tokenizer.json to copy (default: tests/data/tokenizer/qwen_tokenizer.json.gz)")
    ap.add_argument("--focus-layer", type=int, default=None, help="store attnmap_focus_layer in config.json")
    ap.add_argument("--released-generation-config", action="store_true",
                    help="write the released checkpoints' generation_config.json (end ids [151645, 151643], "
                         "repetition_penalty 1.05) instead of the one derived from config.json")
    ap.add_argument("--family", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen2_vl"],
                    help="the model family (config.json model_type); qwen2_vl: Qwen2-VL's vision tower")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    from attnmap_tools.testing.tiny import RELEASED_GENERATION_CONFIG, make_tiny_checkpoint

    extra = None if args.focus_layer is None else {"attnmap_focus_layer": args.focus_layer}
    generation = RELEASED_GENERATION_CONFIG if args.released_generation_config else None
    out = make_tiny_checkpoint(args.out_checkpoint, args.seed, not args.untied, args.tokenizer_json, extra, generation,
                               family=args.family)
    print(f"wrote tiny {'Qwen2-VL' if args.family == 'qwen2_vl' else 'Qwen2.5-VL'} checkpoint to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
