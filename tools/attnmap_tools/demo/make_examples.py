"""Write the sample scenes under examples/ (a seed training never uses), one PNG + one prompt file each.

    python3 -m attnmap_tools.demo.make_examples --out examples --seed 4242

For each wanted question form the first scene of the stream that asks it is taken (no cherry-picking on
model output). Each example gets NAME.png, NAME.txt (the prompt) and NAME.json (truth: answer and bbox).
"""
from __future__ import annotations

import argparse
import json
import pathlib

from attnmap_tools.demo import scenes

WANTED = {  # file stem -> predicate on the question
    "scene_circle": lambda q: q == "What color is the circle?",
    "scene_triangle": lambda q: q == "What color is the triangle?",
    "scene_shape": lambda q: q.startswith("What shape is"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples"))
    ap.add_argument("--seed", type=int, default=4242)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, wanted in WANTED.items():
        index = next(i for i in range(10_000) if wanted(scenes.make_scene(args.seed, i).question))
        scene = scenes.make_scene(args.seed, index)
        scene.image.save(args.out / f"{stem}.png", optimize=True)
        (args.out / f"{stem}.txt").write_text(scene.question + "\n")
        truth = {"seed": args.seed, "index": index, "question": scene.question, "answer": scene.answer,
                 "bbox_xyxy": list(scene.bbox), "width": scene.image.size[0], "height": scene.image.size[1]}
        (args.out / f"{stem}.json").write_text(json.dumps(truth, indent=2) + "\n")
        print(f"{stem}: seed {args.seed} index {index}: {scene.question} -> {scene.answer} {scene.bbox}")


if __name__ == "__main__":
    main()
