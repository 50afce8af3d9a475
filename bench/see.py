"""Can the embedded tiny model learn to see? Accuracy per simple-picture kind against warm-up steps.

Builds the embedded base at a size (``tiny.*`` keys as JSON), runs the real warm-up
(:func:`evovlm.warmup.warmup_model`, TRL SFT): the format phase as the default has it, then the
picture phase (``warmup.see``: distinct simple pictures, each seen once, loss on the answer),
saves the model at each step in ``--steps`` of the picture phase (0: the formats only; one run
of ``max(--steps)`` steps: the later points share its learning-rate schedule), and asks each
saved model the held-out items of ``eval.see_items`` (another seed) through the real evaluation
(:func:`evovlm.evaluate.evaluate`, greedy, the Solver prompt, the last ``\\boxed{}``), and
whether its Proposer still writes proposals (self-play needs both), and what self-play would
train on: the pipeline's pseudo-label check on the same pictures (``--samples`` Solver samples
a picture, majority label per agreement band, the labels MM-Zero's mid-band filter keeps).
Prints a table of accuracy per kind beside each kind's chance level and writes it as JSON.

    nice -n 15 python bench/see.py                                     # default size, 112 px
    nice -n 15 python bench/see.py --steps 0,1000 --replay 2           # Solver against Proposer
    nice -n 15 python bench/see.py --tiny '{"vision_depth": 4}' --steps 0,1000,2000
    nice -n 15 python bench/see.py --tiny '{"max_pixels": 50176}'      # the default 224 px
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

# 112 x 112 px: 16 image tokens a picture (the default tiny.max_pixels, 50176, is 224 px: 64).
PX112 = 12544
# The pseudo-label check samples as the round does: config/embedded.yaml's mmzero.solver.
_EMBEDDED = Path(__file__).resolve().parents[1] / "config" / "embedded.yaml"
SOLVER_SAMPLING = {
    k: v for k, v in yaml.safe_load(_EMBEDDED.read_text())["mmzero"]["solver"].items() if k != "m"
}


def _saver(steps: set[int], folder: Path, processor):
    from transformers import TrainerCallback

    class SaveAt(TrainerCallback):
        """Save the policy at the chosen steps (a plain HF folder, as the warm-up saves)."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if 0 in steps:  # the model after the format phase only
                model.save_pretrained(folder / "step_0")
                processor.save_pretrained(folder / "step_0")

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in steps:
                out = folder / f"step_{state.global_step}"
                model.save_pretrained(out)
                processor.save_pretrained(out)

    return SaveAt()


def run(args) -> dict:
    from evovlm import synth, tiny, warmup
    from evovlm.modeling import load_processor

    spec_over = {"max_pixels": PX112, **json.loads(args.tiny)}
    spec = tiny.TinySpec.from_dict(spec_over)
    steps = sorted(int(s) for s in args.steps.split(","))
    work = Path(tempfile.mkdtemp(prefix="see-bench-"))
    base = tiny.build_tiny_model(work / "base", spec)
    n_params = sum(p.numel() for p in warmup_load(base).parameters())
    # The format phase as the default warm-up has it (the schema's rate, batch and schedule), then
    # the picture phase: exactly max(--steps) steps of --batch-size distinct pictures.
    cfg = warmup.WarmupConfig.from_dict(
        {
            "items": args.format_items,
            "epochs": args.format_epochs,
            "seed": args.seed,
            "see": {
                "items": steps[-1] * args.batch_size,
                "kinds": [k for k in args.kinds.split(",") if k],
                "learning_rate": args.lr,
                "batch_size": args.batch_size,
                "whole_reply": args.whole_reply,
                "replay": args.replay,
                "proposals": args.proposals,
            },
        }
    )
    saves = work / "saves"
    processor = load_processor(base)
    callback = _saver(set(steps), saves, processor)
    t0 = time.perf_counter()
    summary = warmup.warmup_model(base, work / "warm", cfg, callbacks=[callback])
    train_s = time.perf_counter() - t0
    rows = []
    for step in steps:
        row = evaluate_saved(
            saves / f"step_{step}", args.eval_per_kind, args.eval_seed, args.samples, args.sampling
        )
        see_s = summary["see"]["seconds"] * step / summary["see"]["steps"]
        row = {"step": step, "train_s": round(see_s, 1), **row}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {
        "tiny": spec_over,
        "params": n_params,
        "warmup": {k: v for k, v in summary.items() if k != "config"},
        "lr": args.lr,
        "schedule": "cosine",
        "format_s": summary["seconds"],
        "total_s": round(train_s, 1),
        "batch_size": args.batch_size,
        "replay": args.replay,
        "label_sampling": {**SOLVER_SAMPLING, **args.sampling},
        "eval_per_kind": args.eval_per_kind,
        "chance": {k: round(v, 3) for k, v in synth.SEE_CHANCE.items()},
        "rows": rows,
        "work": str(work),
    }


def evaluate_saved(
    model: Path, per_kind: int, seed: int, samples: int = 0, sampling: dict | None = None
) -> dict:
    """Accuracy per kind of the saved policy ``model`` on the held-out simple pictures."""
    import polars as pl

    from evovlm import synth
    from evovlm.engines.hf import HFEngine
    from evovlm.evaluate import EvalConfig, evaluate
    from evovlm.schema import BENCHMARK, frame_from_rows

    t1 = time.perf_counter()
    bench = frame_from_rows(synth.see_benchmark_rows(per_kind, seed), BENCHMARK)
    engine = HFEngine(str(model), batch_size=32, dtype="float32", device="cpu")
    res = evaluate(engine, bench, model.name, EvalConfig.from_dict({"max_tokens": 48}))
    res = res.with_columns(
        pl.col("item_id").map_elements(synth.see_kind, return_dtype=pl.String).alias("kind")
    )
    row = {
        "eval_s": round(time.perf_counter() - t1, 1),
        "boxed": round(float(res["prediction"].is_not_null().mean()), 3),
        "all": round(float(res["correct"].mean()), 3),
    }
    for kind in synth.SEE_KINDS:
        row[kind] = round(float(res.filter(pl.col("kind") == kind)["correct"].mean()), 3)
    row["proposals_parsed"] = proposals_parsed(engine)
    if samples:
        row["labels"] = label_quality(engine, bench, samples, sampling, greedy=res)
    return row


def label_quality(engine, bench, m: int, sampling: dict | None = None, greedy=None) -> dict:
    """What self-play would train on: the pipeline's own pseudo-label check
    (:mod:`evovlm.methods.mmzero.pseudolabel`: ``m`` Solver samples a picture at the embedded
    config's Solver sampling unless ``sampling`` says otherwise, majority label, agreement band,
    MM-Zero's mid-band filter), graded against the exact answers. Self-play can raise accuracy
    only where the labels it keeps are right more often than the greedy Solver already is:
    ``kept greedy`` is the greedy Solver's accuracy (``greedy``, the evaluation's rows) on the
    same kept items."""
    from evovlm.methods.mmzero import pseudolabel

    sampling = {**SOLVER_SAMPLING, **(sampling or {})}
    samples = pseudolabel.sample_labels(engine, bench, round_=0, m=m, sampling=sampling, seed=0)
    labels = pseudolabel.label_table(samples)
    summary = pseudolabel.summarize(labels)
    out = {"majority": summary["overall"]["accuracy"], "m": m}
    for name, block in summary["by_band"].items():
        out[f"band {name}"] = [block["n"], block["accuracy"]]
    filt = summary["filter"]
    out["kept"] = [filt["kept"], filt["kept_accuracy"]]
    out["dropped"] = [filt["dropped"], filt["dropped_accuracy"]]
    if greedy is not None:
        greedy = greedy.select("item_id", greedy_correct="correct")
        kept = labels.filter("in_band").join(greedy, on="item_id")
        out["kept greedy"] = [kept.height, float(kept["greedy_correct"].mean() or 0.0)]
    return out


def proposals_parsed(engine, per_topic: int = 8) -> str:
    """Does the Proposer still write proposals? ``per_topic`` samples (temperature 0.8, 512
    tokens) for each of the simple-picture seed topics, parsed as the proposals stage parses."""
    from evovlm import parse, prompts, synth
    from evovlm.engines.base import Request, SamplingParams

    sampling = SamplingParams(n=per_topic, temperature=0.8, max_tokens=512)
    requests = [
        Request(prompts.render_messages("proposer", topic=topic), sampling=sampling, seed=i)
        for i, topic in enumerate(synth.SEE_TOPICS)
    ]
    texts = [s.text for out in engine.generate(requests) for s in out.samples]
    return f"{sum(parse.parse_proposal(t).ok for t in texts)}/{len(texts)}"


def warmup_load(path):
    from evovlm.modeling import load_model

    return load_model(path, dtype="float32", device="cpu")


def table(result: dict) -> str:
    from evovlm import synth

    head = ["step", "train s", *synth.SEE_KINDS, "all", "boxed", "proposals parsed"]
    head += ["majority label", "top band (n)", "kept labels (n)", "greedy on kept"]
    chance = result["chance"]
    lines = [
        f"tiny {json.dumps(result['tiny'])}: {result['params'] / 1e6:.2f}M params, "
        f"lr {result['lr']} {result['schedule']}, batch {result['batch_size']}, "
        f"{result['eval_per_kind']} held-out items per kind",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        "| chance | | " + " | ".join(f"{chance[k]:.3f}" for k in synth.SEE_KINDS) + " |" * 8,
    ]
    for row in result["rows"]:
        cells = [row["step"], row["train_s"], *(row[k] for k in synth.SEE_KINDS)]
        cells += [row["all"], row["boxed"], row["proposals_parsed"]]
        cells += _label_cells(row.get("labels"))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _label_cells(labels: dict | None) -> list[str]:
    if not labels:
        return ["", "", "", ""]

    def rate(pair):
        n, acc = pair
        return f"{acc:.3f} ({n})" if n else "- (0)"

    cells = [f"{labels['majority']:.3f}", rate(labels["band 0.8-1.0"]), rate(labels["kept"])]
    return cells + [rate(labels["kept greedy"]) if "kept greedy" in labels else ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", default="{}", help="JSON tiny.* overrides (max_pixels 12544)")
    parser.add_argument(
        "--steps", default="0,250,500,1000,1500", help="steps to evaluate at (0: formats only)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--format-items", type=int, default=192, help="warmup.items (format phase)")
    parser.add_argument("--format-epochs", type=float, default=8.0, help="warmup.epochs")
    parser.add_argument("--kinds", default="", help="train on these see kinds only (a,b)")
    parser.add_argument(
        "--whole-reply", type=float, default=0.25, help="warmup.see.whole_reply (0 to 1)"
    )
    parser.add_argument(
        "--replay", type=float, default=1.0, help="warmup.see.replay (format passes)"
    )
    parser.add_argument(
        "--proposals", type=int, default=0, help="warmup.see.proposals (see-kind proposals)"
    )
    parser.add_argument("--eval-per-kind", type=int, default=80)
    parser.add_argument("--eval-seed", type=int, default=1000, help="eval.seed (held out)")
    parser.add_argument("--seed", type=int, default=0, help="warmup.seed (training items)")
    parser.add_argument(
        "--samples",
        type=int,
        default=4,
        help="pseudo-label check: Solver samples a picture (0: off)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="pseudo-label check's Solver temperature"
    )
    parser.add_argument("--top-k", type=int, default=None, help="pseudo-label check's top_k")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="", help="write the result as JSON here")
    parser.add_argument(
        "--evaluate", nargs="+", default=[], help="only evaluate these saved model folders"
    )
    args = parser.parse_args()
    args.sampling = {
        k: v for k, v in (("temperature", args.temperature), ("top_k", args.top_k)) if v is not None
    }
    import torch

    torch.set_num_threads(args.threads)
    if args.evaluate:
        for folder in args.evaluate:
            row = evaluate_saved(
                Path(folder), args.eval_per_kind, args.eval_seed, args.samples, args.sampling
            )
            print(json.dumps({"model": folder, "sampling": args.sampling, **row}), flush=True)
        return 0
    result = run(args)
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
