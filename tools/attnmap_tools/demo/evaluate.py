"""Held-out check of the demo checkpoint with transformers (eager attention), the reference for the C++ CLI.

    python3 -m attnmap_tools.demo.evaluate --checkpoint models/demo-qwen2_5_vl --seed 12345 --count 100

Prints the answer accuracy (greedy first answer token = argmax of the logits at the last prompt position,
after "<|im_start|>assistant\\n") and the focus-map hit rate (argmax cell of the focus layer's map touches
the asked shape's bounding box). Use a seed that training did not use (training uses --seed 0).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import torch

from attnmap_tools.demo import focus, model as demo_model, scenes


class Evaluator:
    """Runs the checkpoint on one scene at a time, the way `attnmap run` does (batch of one, no padding)."""

    def __init__(self, checkpoint: pathlib.Path):
        self.processor = demo_model.load_processor(checkpoint)
        self.model = demo_model.load_model(checkpoint)
        cfg = json.loads((pathlib.Path(checkpoint) / "config.json").read_text())
        self.focus_layer = int(cfg["attnmap_focus_layer"])
        tok = self.processor.tokenizer
        self.image_token_id = self.model.config.image_token_id
        self.vision_end_id = tok.convert_tokens_to_ids("<|vision_end|>")
        self.im_end_id = tok.convert_tokens_to_ids("<|im_end|>")

    @torch.no_grad()
    def run(self, scene: scenes.Scene) -> focus.Record:
        text = demo_model.prompt_text(self.processor, scene.question)
        enc = self.processor(text=[text], images=[scene.image], return_tensors="pt")
        out = self.model(**enc, output_attentions=True, use_cache=False)
        token_id = int(out.logits[0, -1].argmax())
        ids = enc["input_ids"][0]
        _, gh, gw = enc["image_grid_thw"][0].tolist()
        rows = focus.question_rows(ids, self.vision_end_id, self.im_end_id)
        amap = focus.focus_map(out.attentions[self.focus_layer][0], ids, self.image_token_id, rows, (gh // 2, gw // 2))
        return focus.Record(scene, self.processor.tokenizer.decode([token_id]), amap.float().numpy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=pathlib.Path, required=True)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="one line per scene")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ev = Evaluator(args.checkpoint)
    records = []
    for i in range(args.count):
        rec = ev.run(scenes.make_scene(args.seed, i))
        records.append(rec)
        if args.verbose:
            ok = focus.hit(rec.scene.image.size, rec.scene.bbox, rec.amap)
            print(f"{i:4d} {rec.scene.question:28s} truth {rec.scene.answer:8s} predicted {rec.predicted:8s} "
                  f"map {'hit' if ok else 'MISS'}")
    print(f"focus layer {ev.focus_layer}, seed {args.seed}: {focus.score(records)}")
    # By kind of question, to see which half is weaker.
    for prefix in ("What color", "What shape"):
        part = [r for r in records if r.scene.question.startswith(prefix)]
        if part:
            print(f"  {prefix} ...: {focus.score(part)}")


if __name__ == "__main__":
    main()
