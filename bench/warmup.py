"""Warm-up of the embedded tiny model, and the funnel it gives: prints seconds and rates.

Builds the tiny model and warms it up (or takes a model folder with --model), then runs the
real MM-Zero stage functions once (propose -> write code -> render -> answer) at one or more
sampling temperatures for the Proposer and Coder, and prints the rates issue 7 asks for:
proposals parsed, programs rendered, Solver answers with a boxed answer.

    python bench/warmup.py                                  # the config defaults
    python bench/warmup.py --warmup '{"epochs": 12}' --temps 0.3,0.5
    python bench/warmup.py --model resources/tiny-warm --temps 0.2,0.4,0.6
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def funnel(model: str, cfg: dict, temperature: float | None, threads: int) -> dict:
    from evovlm.methods.mmzero import stages as mmzero
    from evovlm.render import RenderConfig, render_programs
    from evovlm.stages import engine_from_config

    mm = cfg["mmzero"]
    proposer, coder = dict(mm["proposer"]), dict(mm["coder"])
    if temperature is not None:
        proposer["temperature"] = coder["temperature"] = temperature
    engine = engine_from_config(model, cfg["engine"], "float32")
    t0 = time.perf_counter()
    proposals = mmzero.propose(
        engine,
        round_=1,
        topics=mmzero.seed_topics(mm["seed_topics"]),
        prompts_per_topic=mm["prompts_per_topic"],
        sampling=proposer,
        seed=cfg["seed"],
    )
    programs = mmzero.write_code(
        engine,
        proposals,
        round_=1,
        k=coder["k"],
        languages=coder["languages"],
        sampling=coder,
        seed=cfg["seed"],
    )
    renders = render_programs(
        programs.select("program_id", "language", "code"),
        RenderConfig.from_dict(cfg["render"]),
        threads=threads,
    )
    answers = mmzero.sample_answers(
        engine,
        proposals,
        programs,
        renders,
        round_=1,
        m=mm["solver"]["m"],
        sampling=mm["solver"],
        seed=cfg["seed"],
    )
    ok = renders.filter(renders["status"] == "ok")
    by_language = {}
    for language in coder["languages"]:
        ids = programs.filter(programs["language"] == language)["program_id"]
        sub = renders.filter(renders["program_id"].is_in(ids.implode()))
        by_language[language] = f"{(sub['status'] == 'ok').sum()}/{sub.height}"
    return {
        "temperature": proposer["temperature"],
        "parsed": f"{proposals['parse_ok'].sum()}/{proposals.height}",
        "rendered": f"{ok.height}/{renders.height}",
        "rendered_by_language": by_language,
        "render_status": dict(renders["status"].value_counts().iter_rows()),
        "boxed": f"{answers['answer'].is_not_null().sum()}/{answers.height}",
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an existing model folder (skips build and warm-up)")
    ap.add_argument("--tiny", default="{}", help="JSON overrides of config key 'tiny'")
    ap.add_argument("--warmup", default="{}", help="JSON overrides of config key 'warmup'")
    ap.add_argument("--temps", default="", help="comma-separated Proposer/Coder temperatures")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="save the warmed-up model here")
    args = ap.parse_args()

    from evovlm.experiment import validate_config

    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg["tiny"] = {**cfg.get("tiny", {}), **json.loads(args.tiny)}
    cfg["warmup"] = {**cfg.get("warmup", {}), **json.loads(args.warmup)}
    validate_config(cfg)

    model = args.model
    if model is None:
        from evovlm.tiny import TinySpec, build_tiny_model
        from evovlm.warmup import WarmupConfig, warmup_model

        tmp = Path(tempfile.mkdtemp(prefix="evovlm-warmup-"))
        t0 = time.perf_counter()
        base = build_tiny_model(tmp / "base", TinySpec.from_dict(cfg["tiny"]))
        build_s = time.perf_counter() - t0
        warm_cfg = {k: v for k, v in cfg["warmup"].items() if k != "enabled"}
        out = Path(args.keep) if args.keep else tmp / "warm"
        summary = warmup_model(base, out, WarmupConfig.from_dict(warm_cfg), "mmzero")
        print(f"build: {build_s:.1f} s")
        print("warm-up:", json.dumps({k: summary[k] for k in summary if k != "config"}))
        model = str(out)
    temps = [float(t) for t in args.temps.split(",") if t] or [None]
    for temperature in temps:
        print("funnel:", json.dumps(funnel(model, cfg, temperature, args.threads)))


if __name__ == "__main__":
    main()
