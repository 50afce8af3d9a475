"""What a run made and whether it improved: per-round plots, training curves, a gallery, a summary.

Everything here reads the run's outputs (``metrics.json``, the reward and sample tables, the
training summaries, ``eval/accuracy.parquet``, the pseudo-label summaries) and reads whatever
keys exist: a rate added to ``metrics.json`` under ``rates`` shows up without a change here.
The Snakemake rules in ``workflow/rules/report.smk`` wrap the files in ``report()``, so
``snakemake --report report.html`` holds them.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

# TRL log keys plotted per training step (the first present of each group of names).
CURVES = {
    "loss": ("loss",),
    "reward": ("reward",),
    "KL": ("kl",),
    "entropy": ("entropy",),
    "clip ratio": ("clip_ratio/region_mean", "clip_ratio"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def _save_round(fig, ax, metrics: dict[str, Any], what: str, path: str | Path) -> None:
    """Title a per-round figure ("Round <n>: <what>") and save it."""
    ax.set_title(f"Round {metrics.get('round', '?')}: {what}")
    _save(fig, path)


def _label(ax, text: str, xy, offset: tuple[float, float], **style) -> None:
    """``text`` at ``offset`` points from the data point ``xy``."""
    ax.annotate(text, xy, xytext=offset, textcoords="offset points", **style)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def rates_of(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The round's rates: ``metrics['rates']`` as written, else ratios derived from the funnel."""
    if metrics.get("rates"):
        return dict(metrics["rates"])
    funnel = metrics.get("funnel", {})
    pairs = {
        "parse_rate": ("questions_parsed", "questions"),
        "answer_extract_rate": ("answers_extracted", "answers"),
    }
    return {
        name: funnel[num] / funnel[den] if funnel.get(den) else None
        for name, (num, den) in pairs.items()
        if num in funnel and den in funnel
    }


# ---------------------------------------------------------------------------------------------
# Per-round figures


def plot_rewards(metrics: dict[str, Any], path: str | Path) -> None:
    """Mean reward +- std per role."""
    fig, ax = _pyplot().subplots(figsize=(5, 3.2))
    stats = {role: s for role, s in metrics.get("rewards", {}).items() if s.get("mean") is not None}
    if not stats:
        _empty(ax, "no rewards this round")
    else:
        roles = list(stats)
        means = [stats[r]["mean"] for r in roles]
        stds = [stats[r]["std"] or 0.0 for r in roles]
        bars = ax.bar(roles, means, yerr=stds, capsize=6, color=["#4c72b0", "#dd8452", "#55a868"])
        for bar, s in zip(bars, (stats[r] for r in roles), strict=True):
            up = s["mean"] >= 0
            _label(
                ax,
                f"{s['mean']:.2f}\nn={s['n']}",
                (bar.get_x() + bar.get_width() * 0.72, 0),
                (0, 3 if up else -3),
                ha="center",
                va="bottom" if up else "top",
                fontsize=8,
            )
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_ylabel("reward (mean ± std)")
    _save_round(fig, ax, metrics, "reward per role", path)


def rate_errors(metrics: dict[str, Any]) -> dict[str, float]:
    """The standard error of each rate (``metrics['rate_se']``; 0 where the run has none)."""
    return {k: float(v) for k, v in (metrics.get("rate_se") or {}).items() if v is not None}


def _top(values: Iterable[float]) -> float:
    """An upper axis limit that fits every value: 1 for shares, more for a mean such as
    EvoLMM's answer entropy (nats, up to ln n)."""
    return max([1.0, *values]) * 1.12


def plot_rates(metrics: dict[str, Any], path: str | Path) -> None:
    """Every rate the round has (parse, render, boxed, solver agreement, ...), as bars with
    one standard error (``rate_se``)."""
    rates = {k: v for k, v in rates_of(metrics).items() if isinstance(v, int | float)}
    errors = rate_errors(metrics)
    fig, ax = _pyplot().subplots(figsize=(max(4.5, 1.1 * len(rates) + 1.5), 3.2))
    if not rates:
        _empty(ax, "no rates this round")
    else:
        names = list(rates)
        se = [errors.get(n, 0.0) for n in names]
        bars = ax.bar(
            range(len(names)), [rates[n] for n in names], yerr=se, capsize=4, color="#4c72b0"
        )
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
        for bar, name, e in zip(bars, names, se, strict=True):
            text = f"{rates[name]:.2f}" + (f"±{e:.2f}" if e else "")
            top = (bar.get_x() + bar.get_width() / 2, bar.get_height() + e)
            _label(ax, text, top, (0, 2), ha="center", fontsize=7)
        ax.set_ylim(0, _top(rates[n] + e for n, e in zip(names, se, strict=True)))
        ax.set_ylabel("rate (± 1 SE)")
    _save_round(fig, ax, metrics, "funnel rates", path)


def plot_render_status(metrics: dict[str, Any], path: str | Path) -> None:
    """Render status classes (MM-Zero), or question parse errors (EvoLMM)."""
    counts = metrics.get("render_status") or {}
    what = "render status"
    if not counts:
        counts = {"ok": metrics.get("funnel", {}).get("questions_parsed", 0)}
        counts |= metrics.get("parse_errors") or {}
        what = "question parse status"
    fig, ax = _pyplot().subplots(figsize=(5, 3.2))
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        _empty(ax, f"no {what} this round")
    else:
        names = sorted(counts, key=lambda k: (k != "ok", -counts[k]))
        colors = ["#55a868" if n == "ok" else "#c44e52" for n in names]
        ax.barh(names[::-1], [counts[n] for n in names][::-1], color=colors[::-1])
        for i, n in enumerate(names[::-1]):
            _label(ax, str(counts[n]), (counts[n], i), (3, 0), va="center", fontsize=8)
        ax.set_xlim(0, max(counts.values()) * 1.15)
        ax.set_xlabel("count")
    _save_round(fig, ax, metrics, what, path)


def plot_agreement(metrics: dict[str, Any], path: str | Path) -> None:
    """Agreement histograms (share of the majority answer per question), one panel each."""
    hists = metrics.get("agreement_histograms") or {}
    fig, axes = _pyplot().subplots(
        1, max(1, len(hists)), figsize=(4.2 * max(1, len(hists)), 3.2), squeeze=False
    )
    if not hists:
        _empty(axes[0][0], "no agreement histogram this round")
    for ax, (name, hist) in zip(axes[0], hists.items(), strict=False):
        ax.bar(list(hist), list(hist.values()), color="#8172b2")
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("agreement")
        ax.set_ylabel("images")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"Round {metrics.get('round', '?')}: agreement")
    _save(fig, path)


def log_history(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """TRL's per-step log entries of a lineage (all its roles, in training order)."""
    out = []
    for role, record in (summary.get("roles") or {}).items():
        for entry in record.get("log_history") or []:
            if "loss" in entry or any(k.startswith("reward") for k in entry):
                out.append({"role": role, **entry})
    return out


def plot_training(summaries: dict[str, dict[str, Any]], round_: int, path: str | Path) -> None:
    """GRPO curves per lineage: loss, reward, KL, entropy, clip ratio per step (one row each)."""
    plt = _pyplot()
    lineages = sorted(summaries)
    fig, axes = plt.subplots(
        max(1, len(lineages)),
        len(CURVES),
        figsize=(3.0 * len(CURVES), 2.4 * max(1, len(lineages))),
        squeeze=False,
    )
    for row, lineage in zip(axes, lineages, strict=False):
        history = log_history(summaries[lineage])
        for ax, (title, keys) in zip(row, CURVES.items(), strict=True):
            key = next((k for k in keys if any(k in e for e in history)), None)
            ax.set_title(f"{lineage}: {title}", fontsize=9)
            if key is None:
                reason = (
                    "not trained" if summaries[lineage].get("copied_previous") else "not logged"
                )
                _empty(ax, reason)
                continue
            for role in dict.fromkeys(e["role"] for e in history):
                points = [
                    (e.get("step", i + 1), e[key])
                    for i, e in enumerate(history)
                    if e["role"] == role and key in e
                ]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="o", ms=3, label=role)
            ax.set_xlabel("step", fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.tick_params(labelsize=7)
            if len({e["role"] for e in history}) > 1:
                ax.legend(fontsize=7)
    fig.suptitle(f"Round {round_}: GRPO training")
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Across rounds


def plot_eval(accuracy: pl.DataFrame, path: str | Path) -> None:
    """Accuracy per policy with its 95% interval, base first, one panel per benchmark."""
    plt = _pyplot()
    benches = list(dict.fromkeys(accuracy["benchmark"].to_list())) if accuracy.height else []
    fig, axes = plt.subplots(
        1, max(1, len(benches)), figsize=(4.5 * max(1, len(benches)), 3.4), squeeze=False
    )
    if not benches:
        _empty(axes[0][0], "no evaluation")
    for ax, bench in zip(axes[0], benches, strict=False):
        rows = accuracy.filter(pl.col("benchmark") == bench).to_dicts()  # already base first
        xs = list(range(len(rows)))
        acc = [r["accuracy"] for r in rows]
        low = [r["accuracy"] - (r["ci95_low"] or 0) for r in rows]
        high = [(r["ci95_high"] or 0) - r["accuracy"] for r in rows]
        ax.errorbar(xs, acc, yerr=[low, high], fmt="o", capsize=6, color="#4c72b0")
        ax.set_xticks(xs, [r["policy"] for r in rows])
        for x, r in zip(xs, rows, strict=True):
            ax.annotate(
                f"{r['correct']}/{r['n']}",
                (x, r["accuracy"]),
                xytext=(12, 6),
                textcoords="offset points",
                fontsize=8,
                va="bottom",
            )
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("accuracy (95% CI)")
        ax.set_title(bench)
    fig.suptitle("Evaluation: accuracy per policy")
    _save(fig, path)


def plot_pseudolabels(summaries: dict[int, dict[str, Any]], path: str | Path) -> None:
    """Majority-label accuracy per agreement band, and the mid-band filter's kept labels."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    rounds = sorted(summaries)
    if not rounds:
        _empty(ax1, "no pseudo-label check")
        _empty(ax2, "no pseudo-label check")
    else:
        bands = list(summaries[rounds[0]]["by_band"])
        width = 0.8 / len(rounds)
        for i, r in enumerate(rounds):
            by_band = summaries[r]["by_band"]
            xs = [j + (i - (len(rounds) - 1) / 2) * width for j in range(len(bands))]
            acc = [by_band[b]["accuracy"] or 0.0 for b in bands]
            ax1.bar(xs, acc, width, label=f"round {r}")
            for x, b in zip(xs, bands, strict=True):
                ax1.annotate(
                    f"n={by_band[b]['n']}",
                    (x, by_band[b]["accuracy"] or 0.0),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                )
        ax1.set_xticks(range(len(bands)), bands)
        ax1.set_ylim(0, 1.1)
        ax1.set_xlabel("agreement band")
        ax1.set_ylabel("majority label correct")
        ax1.set_title("Label accuracy per agreement band")
        ax1.legend(fontsize=8)
        kept_ok = [summaries[r]["filter"]["kept_correct"] for r in rounds]
        kept_bad = [summaries[r]["filter"]["kept_wrong"] for r in rounds]
        names = [f"round {r}" for r in rounds]
        ax2.bar(names, kept_ok, color="#55a868", label="kept, correct")
        ax2.bar(names, kept_bad, bottom=kept_ok, color="#c44e52", label="kept, wrong")
        for j, r in enumerate(rounds):
            overall = summaries[r]["overall"]["accuracy"]
            dropped = summaries[r]["filter"].get("dropped_accuracy")
            text = f"all labels: {overall:.2f}" if overall is not None else ""
            text += f"\ndropped: {dropped:.2f}" if dropped is not None else ""
            ax2.annotate(
                text,
                (j, kept_ok[j] + kept_bad[j]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        ax2.set_ylabel("labels kept by the mid-band filter")
        ax2.set_title("Mid-band filter: kept labels")
        ax2.legend(fontsize=8)
        top = max(k + b for k, b in zip(kept_ok, kept_bad, strict=True))
        ax2.set_ylim(0, max(1, top) * 1.25)
    _save(fig, path)


def _per_round(ax, rounds: list[int], values: list, err: list[float], label: str, capsize: int):
    """One line over the rounds with error bars (a missing value is a gap)."""
    values = [math.nan if v is None else v for v in values]
    ax.errorbar(rounds, values, yerr=err, marker="o", capsize=capsize, label=label)


def _round_axis(ax, rounds: list[int], title: str, legend: bool) -> None:
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)


def plot_rounds(metrics: dict[int, dict[str, Any]], path: str | Path) -> None:
    """Rates and mean rewards across rounds (does the loop move?)."""
    plt = _pyplot()
    rounds = sorted(metrics)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    rates: dict[str, list] = {}
    for r in rounds:
        for k, v in rates_of(metrics[r]).items():
            rates.setdefault(k, [None] * len(rounds))[rounds.index(r)] = v
    errors = {r: rate_errors(metrics[r]) for r in rounds}
    highs = []
    for name, values in rates.items():
        se = [errors[r].get(name, 0.0) for r in rounds]
        _per_round(ax1, rounds, values, se, name, capsize=3)
        highs += [v + e for v, e in zip(values, se, strict=True) if v is not None]
    ax1.set_ylim(-0.02, _top(highs))
    _round_axis(ax1, rounds, "Rates per round (± 1 SE)", bool(rates))
    roles = sorted({role for m in metrics.values() for role in m.get("rewards", {})})
    for role in roles:
        mean = [metrics[r].get("rewards", {}).get(role, {}).get("mean") for r in rounds]
        std = [metrics[r].get("rewards", {}).get(role, {}).get("std") or 0.0 for r in rounds]
        _per_round(ax2, rounds, mean, std, role, capsize=4)
    _round_axis(ax2, rounds, "Mean reward ± std per role", bool(roles))
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Summary table


def summary_rows(
    metrics: dict[int, dict[str, Any]],
    accuracy: pl.DataFrame | None = None,
    pseudolabels: dict[int, dict[str, Any]] | None = None,
    method: str | None = None,
) -> pl.DataFrame:
    """One row per round: every rate, funnel count, reward mean/std, evaluation and label figure.

    The round's evaluation row is its trained Solver (policy ``round_<r>``); the base model's
    figures are repeated in every row as ``eval_<benchmark>_base_accuracy`` for a single join.
    """
    rows = []
    collapse = {c["to"]: c["warning"] for c in collapse_check(pseudolabels or {})}
    for r in sorted(metrics):
        m = metrics[r]
        row: dict[str, Any] = {"round": r, "method": method}
        for k, v in rates_of(m).items():
            row[f"rate_{k}"] = None if v is None else float(v)
        for k, v in (m.get("funnel") or {}).items():
            row[f"funnel_{k}"] = int(v)
        for role, s in (m.get("rewards") or {}).items():
            row[f"reward_{role}_mean"] = s.get("mean")
            row[f"reward_{role}_std"] = s.get("std")
        if accuracy is not None and accuracy.height:
            for a in accuracy.filter(pl.col("policy").is_in([f"round_{r}", "base"])).to_dicts():
                prefix = f"eval_{a['benchmark']}_" + ("base_" if a["policy"] == "base" else "")
                row[prefix + "accuracy"] = a["accuracy"]
                row[prefix + "ci95_low"] = a["ci95_low"]
                row[prefix + "ci95_high"] = a["ci95_high"]
                row[prefix + "n"] = a["n"]
        p = (pseudolabels or {}).get(r)
        if p:
            row["pseudolabel_accuracy"] = p["overall"]["accuracy"]
            row["pseudolabel_mean_agreement"] = mean_agreement(p)
            for band, block in (p.get("by_band") or {}).items():
                low, high = (round(float(x) * 100) for x in band.split("-"))
                row[f"pseudolabel_band_{low}_{high}_n"] = block.get("n")
                row[f"pseudolabel_band_{low}_{high}_accuracy"] = block.get("accuracy")
            row["pseudolabel_kept"] = p["filter"]["kept"]
            row["pseudolabel_kept_correct"] = p["filter"]["kept_correct"]
            row["pseudolabel_kept_wrong"] = p["filter"]["kept_wrong"]
            row["pseudolabel_kept_accuracy"] = p["filter"]["kept_accuracy"]
            row["pseudolabel_dropped"] = p["filter"].get("dropped")
            row["pseudolabel_dropped_accuracy"] = p["filter"].get("dropped_accuracy")
            # agreement up and kept labels' accuracy down since the previous round (null: round
            # 1, or no kept labels to compare)
            row["pseudolabel_collapse_warning"] = collapse.get(r)
        rows.append(row)
    if not rows:
        return pl.DataFrame({"round": []}, schema={"round": pl.Int64})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    floats = [
        c
        for c in frame.columns
        if c.startswith(("rate_", "reward_", "pseudolabel_acc", "pseudolabel_mean"))
        or (c.startswith("pseudolabel_") and c.endswith("_accuracy"))
    ]
    if "pseudolabel_collapse_warning" in frame.columns:  # all null in a one-round run
        frame = frame.with_columns(pl.col("pseudolabel_collapse_warning").cast(pl.Boolean))
    floats += [c for c in frame.columns if c.startswith("eval_") and not c.endswith("_n")]
    return frame.with_columns([pl.col(c).cast(pl.Float64) for c in floats])


# ---------------------------------------------------------------------------------------------
# Gallery


# Gallery images are thumbnails: the report embeds each gallery page as one data URL, and
# Chromium does not open a URL over 2 MiB (url::kMaxURLChars), so full-size photos blank it.
THUMBNAIL = 256


def thumbnail(data: bytes, side: int = THUMBNAIL) -> tuple[str, bytes]:
    """``(mime, bytes)`` of the image shrunk to fit ``side`` x ``side`` (never enlarged): PNG or
    JPEG, whichever is smaller (PNG keeps line art sharp, JPEG keeps photos small)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    image.thumbnail((side, side))
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, format="JPEG", quality=85)
    if "A" in image.getbands() or "transparency" in image.info:
        return "image/png", png.getvalue()  # JPEG has no alpha
    if len(jpeg.getvalue()) < len(png.getvalue()):
        return "image/jpeg", jpeg.getvalue()
    return "image/png", png.getvalue()


def img_tag(data: bytes | None) -> str:
    if not data:
        return "<div class='noimg'>no image</div>"
    try:
        mime, small = thumbnail(data)
    except Exception:  # noqa: BLE001  (an undecodable image is shown as such, not a crash)
        return "<div class='noimg'>undecodable image</div>"
    return f"<img src='data:{mime};base64,{base64.b64encode(small).decode()}' alt='image'>"


def html_value(value: Any) -> str:
    if value is None:
        return "<span class='none'>none</span>"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 1.3em; } .note { color: #555; font-size: 0.9em; }
.card { display: flex; gap: 1.2em; border: 1px solid #ccc; border-radius: 6px; padding: 0.8em;
        margin: 0.8em 0; align-items: flex-start; }
.card img { width: 224px; height: auto; border: 1px solid #ddd; image-rendering: pixelated;
            flex: none; }
.noimg { width: 224px; height: 224px; background: #eee; display: flex; align-items: center;
         justify-content: center; flex: none; }
.body { flex: 1; min-width: 0; font-size: 0.9em; }
.caption { font-style: italic; margin-bottom: 0.4em; }
table { border-collapse: collapse; margin: 0.3em 0; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #b42318; }
.none { color: #999; } .reward { font-family: monospace; }
"""


def gallery_page(title: str, note: str, cards: Iterable[str]) -> str:
    cards = list(cards)
    body = "\n".join(cards) if cards else "<p>No samples this round.</p>"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='note'>{note}</p>{body}</body></html>\n"
    )


def pick(items: list, k: int, seed: int) -> list:
    if len(items) <= k:
        return items
    return sorted(random.Random(seed).sample(items, k), key=items.index)


def read_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------------------------------------
# Overview: the report's landing page (did it improve? the rates, evaluation, labels, config)


def _se_share(p: float | None, n: int) -> float | None:
    return None if p is None or not n else math.sqrt(max(p * (1 - p), 0.0) / n)


def mean_agreement(summary: dict[str, Any], labels: pl.DataFrame | None = None) -> float | None:
    """Mean agreement of the pseudo-label items: from labels.parquet when given, else the
    summary's own figure, else from its agreement bands (their midpoints; older summaries)."""
    if labels is not None and labels.height and "agreement" in labels.columns:
        return float(labels["agreement"].mean())
    if summary.get("mean_agreement") is not None:
        return float(summary["mean_agreement"])
    total = weighted = 0.0
    for band, block in (summary.get("by_band") or {}).items():
        low, high = (float(x) for x in band.split("-"))
        total += block["n"]
        weighted += block["n"] * (low + high) / 2
    return weighted / total if total else None


def collapse_check(
    summaries: dict[int, dict[str, Any]], labels: dict[int, pl.DataFrame] | None = None
) -> list[dict[str, Any]]:
    """Round to round: the Solver's agreement on the same benchmark items rises while the labels
    the mid-band filter keeps get less accurate (the self-consistency trap: the loop trains on
    ever more confident, ever more wrong labels). One row per pair of consecutive rounds;
    ``warning`` when both move that way, ``beyond_noise`` when both moves exceed two standard
    errors."""
    labels = labels or {}
    rows = []
    rounds = sorted(summaries)
    for a, b in zip(rounds, rounds[1:], strict=False):
        sa, sb = summaries[a], summaries[b]
        ag = [mean_agreement(sa, labels.get(a)), mean_agreement(sb, labels.get(b))]
        acc = [sa["filter"]["kept_accuracy"], sb["filter"]["kept_accuracy"]]
        if None in ag or None in acc:
            rows.append({"from": a, "to": b, "warning": None})
            continue
        acc_se = math.hypot(
            _se_share(acc[0], sa["filter"]["kept"]) or 0.0,
            _se_share(acc[1], sb["filter"]["kept"]) or 0.0,
        )
        ag_se = math.hypot(*(_agreement_se(labels.get(r)) for r in (a, b)))
        rises, falls = ag[1] > ag[0], acc[1] < acc[0]
        rows.append(
            {
                "from": a,
                "to": b,
                "agreement": ag,
                "kept_accuracy": acc,
                "warning": rises and falls,
                "beyond_noise": rises
                and falls
                and ag[1] - ag[0] > 2 * ag_se
                and acc[0] - acc[1] > 2 * acc_se,
            }
        )
    return rows


def _agreement_se(labels: pl.DataFrame | None) -> float:
    if labels is None or labels.height < 2 or "agreement" not in labels.columns:
        return 0.0
    return float(labels["agreement"].std()) / math.sqrt(labels.height)


def _num(value: float | None, se: float | None = None, digits: int = 3) -> str:
    if value is None:
        return "<span class='none'>n/a</span>"
    text = f"{value:.{digits}f}"
    return text + (f" ± {se:.{digits}f}" if se is not None else "")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _eval_section(
    accuracy: pl.DataFrame | None,
    paired: list[dict] | None,
    by_kind: pl.DataFrame | None = None,
) -> str:
    if accuracy is None or not accuracy.height:
        return "<p>Evaluation is off (<code>eval.enabled: false</code>): not computed.</p>"
    rows = accuracy.to_dicts()
    base = {r["benchmark"]: r for r in rows if r["policy"] == "base"}
    table_rows, verdicts = [], []
    for r in rows:
        b = base.get(r["benchmark"])
        change = "" if r["policy"] == "base" or not b else f"{r['accuracy'] - b['accuracy']:+.3f}"
        table_rows.append(
            [
                html.escape(r["benchmark"]),
                html.escape(r["policy"]),
                f"{r['correct']}/{r['n']}",
                _num(r["accuracy"]),
                f"[{_num(r['ci95_low'])}, {_num(r['ci95_high'])}]",
                change,
            ]
        )
    for bench, b in base.items():
        last = [r for r in rows if r["benchmark"] == bench and r["policy"] != "base"]
        if not last:
            continue
        r = last[-1]
        overlap = r["ci95_low"] <= b["ci95_high"] and b["ci95_low"] <= r["ci95_high"]
        verdicts.append(
            f"<li><b>{html.escape(bench)}</b>: {html.escape(r['policy'])} "
            f"{r['correct']}/{r['n']} vs base {b['correct']}/{b['n']} "
            f"({r['accuracy'] - b['accuracy']:+.3f}); "
            + (
                "the 95% intervals overlap: no evidence of a change at this sample size."
                if overlap
                else "the 95% intervals do not overlap."
            )
            + "</li>"
        )
    if paired:
        test = "<p>Paired on the same items: exact McNemar test (two-sided).</p>" + _table(
            [
                "benchmark",
                "policy",
                "against",
                "items",
                "right only by policy",
                "only by other",
                "difference",
                "p",
            ],
            [
                [
                    html.escape(p["benchmark"]),
                    html.escape(p["policy"]),
                    html.escape(p["against"]),
                    str(p["n"]),
                    str(p["only_policy"]),
                    str(p["only_against"]),
                    f"{p['difference']:+.3f}",
                    _num(p["p"], digits=4),
                ]
                for p in paired
            ],
        )
    else:
        test = (
            "<p class='none'>Paired test (base and each round on the same items): not computed "
            "(no results/eval/paired.parquet).</p>"
        )
    return (
        f"<ul>{''.join(verdicts)}</ul>"
        + _table(
            ["benchmark", "policy", "correct", "accuracy", "95% Wilson CI", "vs base"],
            table_rows,
        )
        + test
        + _kind_section(by_kind)
    )


def _kind_section(by_kind: pl.DataFrame | None) -> str:
    """Accuracy per item kind, one column per policy, beside the kind's chance level."""
    if by_kind is None or not by_kind.height:
        return ""
    policies = list(dict.fromkeys(by_kind["policy"].to_list()))
    cells: dict[tuple, dict[str, dict]] = {}
    for r in by_kind.to_dicts():
        cells.setdefault((r["benchmark"], r["kind"]), {})[r["policy"]] = r
    rows = []
    for (bench, kind), per_policy in cells.items():
        chance = next(iter(per_policy.values()))["chance"]
        row = [html.escape(bench), html.escape(kind or "(no kind)"), _num(chance, digits=2)]
        for policy in policies:
            r = per_policy.get(policy)
            row.append(f"{r['correct']}/{r['n']} = {r['accuracy']:.3f}" if r else "")
        rows.append(row)
    return (
        "<p>Accuracy per item kind, beside its chance level (n/a: an open answer, no guessing rate).</p>"
        + (_table(["benchmark", "kind", "chance", *map(html.escape, policies)], rows))
    )


def _rates_section(metrics: dict[int, dict[str, Any]]) -> str:
    rounds = sorted(metrics)
    names = list(dict.fromkeys(k for r in rounds for k in rates_of(metrics[r])))
    if not names:
        return "<p>No rates.</p>"
    rows = []
    for name in names:
        cells = [f"<span class='mono'>{html.escape(name)}</span>"]
        for r in rounds:
            value = rates_of(metrics[r]).get(name)
            n = (metrics[r].get("rate_counts") or {}).get(name)
            cell = _num(value, rate_errors(metrics[r]).get(name))
            cells.append(cell + (f" <span class='n'>(n={n})</span>" if n else ""))
        rows.append(cells)
    roles = sorted({role for r in rounds for role in metrics[r].get("rewards", {})})
    for role in roles:
        cells = [f"reward <span class='mono'>{html.escape(role)}</span> (mean ± std)"]
        for r in rounds:
            s = metrics[r].get("rewards", {}).get(role, {})
            cells.append(_num(s.get("mean"), s.get("std")))
        rows.append(cells)
    return _table(["rate (± 1 SE)", *(f"round {r}" for r in rounds)], rows)


def _labels_section(
    summaries: dict[int, dict[str, Any]], labels: dict[int, pl.DataFrame] | None
) -> str:
    if not summaries:
        return (
            "<p class='none'>Pseudo-label accuracy and the collapse warning: not computed (the "
            "check needs MM-Zero with evaluation on and built-in items, "
            "<span class='mono'>eval.builtin_items</span> &gt; 0).</p>"
        )
    rows = []
    for r in sorted(summaries):
        s, f = summaries[r], summaries[r]["filter"]
        rows.append(
            [
                f"round {r}",
                str(s["overall"]["n"]),
                _num(
                    s["overall"]["accuracy"], _se_share(s["overall"]["accuracy"], s["overall"]["n"])
                ),
                _num(mean_agreement(s, (labels or {}).get(r))),
                f"{f['kept']} ({f['kept_correct']} right, {f['kept_wrong']} wrong)",
                _num(f["kept_accuracy"], _se_share(f["kept_accuracy"], f["kept"])),
                _num(
                    f.get("dropped_accuracy"),
                    _se_share(f.get("dropped_accuracy"), f.get("dropped") or 0),
                )
                + (f" <span class='n'>(n={f['dropped']})</span>" if f.get("dropped") else ""),
            ]
        )
    table = _table(
        [
            "round",
            "labels",
            "accuracy (± SE)",
            "mean agreement",
            "kept by the mid-band filter",
            "kept accuracy (± SE)",
            "dropped accuracy (± SE)",
        ],
        rows,
    )
    bands = _bands_table(summaries)
    checks = collapse_check(summaries, labels)
    if not checks:
        verdict = "<p>Collapse warning: needs two rounds of labels; not computed.</p>"
    else:
        items = []
        for c in checks:
            if c["warning"] is None:
                items.append(
                    f"<li>round {c['from']} → {c['to']}: not computed (no kept labels)</li>"
                )
                continue
            (a0, a1), (k0, k1) = c["agreement"], c["kept_accuracy"]
            text = (
                f"round {c['from']} → {c['to']}: agreement {a0:.3f} → {a1:.3f}, kept labels' "
                f"accuracy {k0:.3f} → {k1:.3f}"
            )
            if c["warning"]:
                strength = "beyond 2 SE" if c["beyond_noise"] else "within noise (under 2 SE)"
                items.append(f"<li class='warn'>⚠ collapse warning ({strength}): {text}</li>")
            else:
                items.append(f"<li>no collapse sign: {text}</li>")
        verdict = f"<ul>{''.join(items)}</ul>"
    return table + bands + verdict


def _bands_table(summaries: dict[int, dict[str, Any]]) -> str:
    """Majority-label accuracy per agreement band and round (right/n): does agreement mean
    correct?"""
    rounds = sorted(summaries)
    bands = list(dict.fromkeys(b for r in rounds for b in summaries[r].get("by_band") or {}))
    if not bands:
        return ""
    rows = []
    for band in bands:
        cells = [f"agreement {band}"]
        for r in rounds:
            block = (summaries[r].get("by_band") or {}).get(band) or {}
            n = block.get("n") or 0
            acc = block.get("accuracy")
            cells.append(
                f"{block.get('correct', 0)}/{n} = {acc:.2f}" if n and acc is not None else ""
            )
        rows.append(cells)
    return "<p>Label accuracy per agreement band (right/n).</p>" + _table(
        ["band", *(f"round {r}" for r in rounds)], rows
    )


_OVERVIEW_STYLE = """
.evovlm-overview { font-family: system-ui, sans-serif; color: #222; font-size: 0.9em; }
.evovlm-overview table { border-collapse: collapse; margin: 0.4em 0 0.8em; }
.evovlm-overview td, .evovlm-overview th { border: 1px solid #ccc; padding: 2px 8px;
  text-align: left; }
.evovlm-overview th { background: #f3f3f3; } .evovlm-overview .none { color: #777; }
.evovlm-overview .n { color: #777; font-size: 0.85em; }
.evovlm-overview .warn { color: #b42318; font-weight: bold; }
.evovlm-overview pre { background: #f6f6f6; color: #222; padding: 0.5em; max-height: 30em;
  overflow: auto; font-size: 0.85em; }
.evovlm-overview .mono { font-family: monospace; }
"""


def overview_html(
    config: dict[str, Any],
    metrics: dict[int, dict[str, Any]],
    accuracy: pl.DataFrame | None = None,
    pseudolabels: dict[int, dict[str, Any]] | None = None,
    labels: dict[int, pl.DataFrame] | None = None,
    paired: list[dict] | None = None,
    by_kind: pl.DataFrame | None = None,
) -> str:
    """The landing page's HTML fragment (also a page of its own): evaluation with Wilson
    intervals and the verdict, the rates per round with standard errors, pseudo-label accuracy
    and the collapse warning, and the run's resolved config."""
    import yaml

    method = config.get("method", "?")
    head = (
        f"<p>Method <b>{html.escape(str(method))}</b>, {len(metrics)} round(s), base model "
        f"<span class='mono'>{html.escape(str(config.get('model', {}).get('base', '?')))}</span>, "
        f"seed {html.escape(str(config.get('seed', '?')))}.</p>"
    )
    return (
        f"<div class='evovlm-overview'><style>{_OVERVIEW_STYLE}</style>{head}"
        "<h3>Did it improve? Evaluation (95% Wilson intervals)</h3>"
        + _eval_section(accuracy, paired, by_kind)
        + "<h3>Rates and rewards per round</h3>"
        + _rates_section(metrics)
        + "<h3>Pseudo-labels: accuracy and the collapse warning</h3>"
        + _labels_section(pseudolabels or {}, labels)
        + "<h3>Config (resolved, as this run used it)</h3><pre>"
        + html.escape(yaml.safe_dump(config, sort_keys=False))
        + "</pre></div>\n"
    )
