"""Train the attnmap demo model (a tiny Qwen2.5-VL) on synthetic shape scenes, on CPU.

    python3 -m attnmap_tools.demo.train --out models/demo-qwen2_5_vl --seed 0 [--steps N] [--minutes 18]

Inputs are made by the stock HF Qwen2_5_VLProcessor (PIL image backend) from our tokenizer and chat
template, exactly as at inference, in a DataLoader worker process (`--workers 1`) so that the main process
only runs the model. Losses (docs/demo_model.md, "Training"): answer CE at the last prompt position (the
position after "<|im_start|>assistant\\n"); focus-map CE on the focus layer (see demo/focus.py) against the
fraction of each map cell the asked shape covers; its per-row form; routing of the answer position onto the
key word; a per-cell probe on the vision tower; an answer probe on the key word right after the focus layer.
Training scenes come from the stream `--seed` (indices 0, 1, 2, ...); held-out checks use other seeds.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import torch
from tokenizers import Tokenizer
from transformers import Qwen2_5_VLForConditionalGeneration

from attnmap_tools.demo import focus, model as demo_model, scenes, tokenizer as demo_tok


class CellProbe(torch.nn.Module):
    """Training-only linear probe on the vision tower's merged tokens: predicts each map cell's shape kind and
    colour (background included). Its dense per-cell labels teach the vision tower to encode "which shape /
    colour is here" far faster than the single answer token does. It is not part of the saved model."""

    def __init__(self, width: int):
        super().__init__()
        self.kind = torch.nn.Linear(width, 1 + len(scenes.SHAPES))
        self.color = torch.nn.Linear(width, 1 + len(scenes.COLORS))
        self.features = None

    def hook(self, _module, _args, output):
        self.features = output.pooler_output  # [sum of merged tokens, width], raster order per image

    def loss(self, labels) -> torch.Tensor:
        kinds = [k for k, _ in labels]
        colors = [c for _, c in labels]
        ce = torch.nn.functional.cross_entropy
        return ce(self.kind(self.features), torch.cat(kinds)) + ce(self.color(self.features), torch.cat(colors))


class AnswerProbe(torch.nn.Module):
    """Training-only linear probe on the key word's hidden state right after the focus layer: predicts the
    answer word. At the focus layer the key word (" circle", " red", ...) is the row that attends to the asked
    shape, so this teaches that layer's value path to carry the attended cell's colour / shape into the key
    word, which the routing loss then has the answer position read. Not part of the saved model."""

    def __init__(self, width: int, n_answers: int):
        super().__init__()
        self.head = torch.nn.Linear(width, n_answers)

    def loss(self, hidden: torch.Tensor, key_rows: list[int], target: torch.Tensor) -> torch.Tensor:
        h = hidden[torch.arange(hidden.shape[0]), torch.tensor(key_rows)]
        return torch.nn.functional.cross_entropy(self.head(h), target)


class SceneBatches(torch.utils.data.Dataset):
    """Batch `step` = scenes step*batch .. step*batch+batch-1 of stream `seed`, processed by the stock
    processor, with the per-cell labels. Built in a DataLoader worker so the main process only trains."""

    def __init__(self, seed: int, batch: int, steps: int, processor):
        self.seed, self.batch, self.steps, self.processor = seed, batch, steps, processor

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        batch_scenes = [scenes.make_scene(self.seed, step * self.batch + j) for j in range(self.batch)]
        texts = [demo_model.prompt_text(self.processor, s.question) for s in batch_scenes]
        enc = self.processor(text=texts, images=[s.image for s in batch_scenes], padding=True, return_tensors="pt")
        enc = dict(enc)
        covers, labels = [], []
        for s, (_, gh, gw) in zip(batch_scenes, enc["image_grid_thw"].tolist()):
            merged = (gh // 2, gw // 2)
            covers.append(torch.from_numpy(scenes.cell_coverage(s.target, s.image.size, merged)).flatten())
            k, c = scenes.cell_labels(s, merged)
            labels.append((torch.from_numpy(k).flatten(), torch.from_numpy(c).flatten()))
        light = [scenes.Scene(None, s.shapes, s.question, s.answer, s.target) for s in batch_scenes]
        sizes = [s.image.size for s in batch_scenes]
        return light, sizes, enc, covers, labels


def route_loss(attn: torch.Tensor, enc, ids) -> torch.Tensor:
    """Cross-entropy pushing the answer position's attention (mean over heads) in `attn` [B, heads, S, S] onto
    the question's key word (the token before "?": the shape or colour asked about)."""
    total = attn.new_zeros(())
    last = enc["attention_mask"].sum(1) - 1
    for b in range(attn.shape[0]):
        rows = focus.question_rows(enc["input_ids"][b], ids["<|vision_end|>"], ids["<|im_end|>"])
        key_word = int(rows[-2])  # rows end with "?"
        total = total - torch.log(attn[b, :, int(last[b]), key_word].mean() + 1e-9)
    return total / attn.shape[0]


def row_loss(attn_b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """Per-row form of the focus objective for one sample (attn_b [heads, S, S] of the focus layer).

    The focus map averages all question rows, but at layer 0 only the key word's row can know which shape
    is asked. So: the key word's row should put its mass on the image (-log mass) and, within the image, on
    the shape (cross-entropy vs coverage); every other question row should keep its mass off the image
    (-log(1 - mass)), so that it does not blur the average."""
    a = attn_b.mean(0)
    key_word = int(rows[-2])  # rows end with "?"
    key = a[key_word, cols]
    mass = key.sum()
    target = cover / cover.sum()
    loss = -(target * torch.log(key / mass + 1e-9)).sum() - torch.log(mass + 1e-9)
    others = torch.tensor([int(r) for r in rows if int(r) != key_word])
    other_mass = a[others][:, cols].sum(1)
    return loss - torch.log(1 - other_mass + 1e-6).mean()


def batch_loss(model, data, answer_ids, ids, attn_weight, focus_layer, probe, probe_weight,
               route_weight, route_layer, row_weight, answer_probe, answer_probe_weight):
    """Forward one batch; returns (loss, answer CE, attention CE, probe CE, #correct answers, #map hits)."""
    batch_scenes, sizes, enc, covers, labels = data
    out = model(**enc, output_attentions=True, output_hidden_states=bool(answer_probe_weight), use_cache=False,
                logits_to_keep=0)
    probe_ce = probe.loss(labels)
    last = enc["attention_mask"].sum(1) - 1  # right padding: last real position = the "\n" after assistant
    logits = out.logits[torch.arange(len(batch_scenes)), last]
    target = torch.tensor([answer_ids[s.answer] for s in batch_scenes])
    answer_ce = torch.nn.functional.cross_entropy(logits, target)
    correct = int((logits.argmax(-1) == target).sum())

    attn = out.attentions[focus_layer]  # [B, heads, S, S], eager probabilities
    attn_ce = logits.new_zeros(())
    rows_ce = logits.new_zeros(())
    hits = 0
    key_rows = []
    for b, s in enumerate(batch_scenes):
        _, gh, gw = enc["image_grid_thw"][b].tolist()
        merged = (gh // 2, gw // 2)
        rows = focus.question_rows(enc["input_ids"][b], ids["<|vision_end|>"], ids["<|im_end|>"])
        key_rows.append(int(rows[-2]))
        amap = focus.focus_map(attn[b], enc["input_ids"][b], ids["<|image_pad|>"], rows, merged)
        p = (amap / amap.sum()).flatten()
        cover = covers[b]
        attn_ce = attn_ce - (cover / cover.sum() * torch.log(p + 1e-9)).sum()
        if row_weight:
            cols = (enc["input_ids"][b] == ids["<|image_pad|>"]).nonzero().squeeze(1)
            rows_ce = rows_ce + row_weight * row_loss(attn[b], rows, cols, cover)
        hits += focus.hit(sizes[b], s.bbox, amap.detach().numpy())
    attn_ce = attn_ce / len(batch_scenes)
    loss = answer_ce + attn_weight * attn_ce + probe_weight * probe_ce + rows_ce / len(batch_scenes)
    if route_weight:
        loss = loss + route_weight * route_loss(out.attentions[route_layer], enc, ids)
    if answer_probe_weight:
        answer_index = torch.tensor([scenes.ANSWER_WORDS.index(s.answer) for s in batch_scenes])
        loss = loss + answer_probe_weight * answer_probe.loss(out.hidden_states[focus_layer + 1], key_rows,
                                                              answer_index)
    return loss, answer_ce, attn_ce, probe_ce, correct, hits


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--attn-weight", type=float, default=1.0, help="0 disables the attention supervision")
    ap.add_argument("--probe-weight", type=float, default=3.0, help="0 disables the per-cell probe loss")
    ap.add_argument("--route-weight", type=float, default=1.0,
                    help="weight of the answer-position routing loss (0 disables it)")
    ap.add_argument("--route-layer", type=int, default=1)
    ap.add_argument("--row-weight", type=float, default=1.0, help="weight of the per-row focus loss (0 disables)")
    ap.add_argument("--answer-probe-weight", type=float, default=1.0,
                    help="weight of the answer probe on the key word after the focus layer (0 disables)")
    ap.add_argument("--minutes", type=float, default=18.0, help="wall-clock cap: stop early (and say so)")
    ap.add_argument("--focus-layer", type=int, default=demo_model.FOCUS_LAYER, help="0-based decoder layer")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader processes making scenes + inputs")
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a loaded 2-core box")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()

    tok_json = demo_tok.build_tokenizer_json()
    answer_ids = demo_tok.check_answer_words(Tokenizer.from_str(json.dumps(tok_json)))
    ids = demo_tok.token_ids(tok_json)
    demo_model.write_tokenizer_files(args.out, tok_json)
    processor = demo_model.load_processor(args.out)
    processor.tokenizer.padding_side = "right"

    config = demo_model.model_config(tok_json)
    config.attnmap_focus_layer = args.focus_layer
    # The decoder needs attention probabilities (focus-map and routing losses): eager. The vision tower's
    # attention is not supervised: SDPA there (same maths, faster). The saved config.json is unaffected.
    model = Qwen2_5_VLForConditionalGeneration._from_config(
        config, attn_implementation={"": "eager", "text_config": "eager", "vision_config": "sdpa"})
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}, focus layer {args.focus_layer}, vocab {config.text_config.vocab_size}")

    probe = CellProbe(config.vision_config.out_hidden_size)
    model.model.visual.register_forward_hook(probe.hook)
    answer_probe = AnswerProbe(config.text_config.hidden_size, len(scenes.ANSWER_WORDS))
    params = list(model.parameters()) + list(probe.parameters()) + list(answer_probe.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, args.steps // 20)  # 5%
    window = {"loss": 0.0, "ans": 0.0, "attn": 0.0, "probe": 0.0, "correct": 0, "hits": 0, "n": 0}
    stopped_early = False
    step = 0
    loader = torch.utils.data.DataLoader(SceneBatches(args.seed, args.batch, args.steps, processor), batch_size=None,
                                         shuffle=False, num_workers=args.workers, prefetch_factor=4 if args.workers else None,
                                         persistent_workers=False)
    for step, data in enumerate(loader):
        if time.time() - t0 > args.minutes * 60:
            stopped_early = True
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, warmup)
        loss, ans, attn, probe_ce, correct, hits = batch_loss(
            model, data, answer_ids, ids, args.attn_weight, args.focus_layer, probe, args.probe_weight,
            args.route_weight, args.route_layer, args.row_weight, answer_probe, args.answer_probe_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        for k, v in (("loss", loss.item()), ("ans", ans.item()), ("attn", attn.item()), ("probe", probe_ce.item())):
            window[k] += v
        window["correct"] += correct
        window["hits"] += hits
        window["n"] += args.batch
        if (step + 1) % 25 == 0:
            k = 25
            print(f"step {step + 1:5d}  {time.time() - t0:6.0f}s  loss {window['loss'] / k:.3f}  "
                  f"answer CE {window['ans'] / k:.3f}  attn CE {window['attn'] / k:.3f}  probe CE {window['probe'] / k:.3f}  "
                  f"train acc {window['correct'] / window['n']:.1%}  train hit {window['hits'] / window['n']:.1%}",
                  flush=True)
            window = {key: 0 if isinstance(v, int) else 0.0 for key, v in window.items()}

    steps_done = step if stopped_early else args.steps
    model.eval()
    model.save_pretrained(args.out)
    # save_pretrained also writes generation_config.json; keep the folder to the documented file set.
    (args.out / "generation_config.json").unlink(missing_ok=True)
    cfg_path = args.out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["attnmap_focus_layer"] = args.focus_layer
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    minutes = (time.time() - t0) / 60
    note = " (stopped early by --minutes)" if stopped_early else ""
    print(f"done: {steps_done} steps x {args.batch} scenes in {minutes:.1f} min{note}; saved {args.out}")


if __name__ == "__main__":
    main()
