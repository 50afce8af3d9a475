"""``evovlm compare RUN [RUN ...]``: the per-round table of one or more finished runs side by side.

Each RUN is a working directory (its ``results/round_{r}/metrics.json`` and, when evaluation
ran, ``results/eval/accuracy.parquet``). Prints a Markdown table: per round and run the parse
and render rates, MM-Zero's co-evolution rates (or EvoLMM's), the mean reward per role and the
evaluation accuracy with its Wilson 95 % interval; then, with two runs, the first run's lead over
the second at the last round and its change from round 1 (e.g. trained beside the
``train={learning_rate: 0}`` control). Where the runs kept their answers per item
(``results/eval/<policy>.parquet``), the last round is tested against its base and against the
second run's same round on the same items (exact McNemar), and accuracy per item kind is shown
beside the kind's chance level.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from evovlm import methods


def load_run(folder: str | Path) -> dict[str, Any]:
    """Rounds (number -> metrics dict) and evaluation rows (policy -> row) of a run folder."""
    folder = Path(folder)
    rounds = {}
    for path in (folder / "results").glob("round_*/metrics.json"):
        match = re.fullmatch(r"round_(\d+)", path.parent.name)
        if match:
            rounds[int(match.group(1))] = json.loads(path.read_text())
    if not rounds:
        raise FileNotFoundError(f"{folder}: no results/round_*/metrics.json (not a finished run?)")
    evaluation = {}
    items = {}
    accuracy = folder / "results/eval/accuracy.parquet"
    if accuracy.is_file():
        import polars as pl

        for row in pl.read_parquet(accuracy).iter_rows(named=True):
            evaluation[row["policy"]] = row
        # Each policy's answers, item by item (results/eval/<policy>.parquet), for the paired test
        for policy in evaluation:
            path = folder / f"results/eval/{policy}.parquet"
            if path.is_file():
                frame = pl.read_parquet(path)
                for column in ("kind", "chance"):  # runs made before items had kinds
                    if column not in frame.columns:
                        frame = frame.with_columns(pl.lit(None).alias(column))
                items[policy] = frame.select("benchmark", "item_id", "correct", "kind", "chance")
    # resolved: "." (or "run/") names the folder itself, not an empty string
    name = folder.resolve().name
    return {
        "name": name,
        "method": _recorded_method(folder),
        "rounds": dict(sorted(rounds.items())),
        "eval": evaluation,
        "items": items,
    }


def _recorded_method(folder: Path) -> str | None:
    """The method ``results/experiment.json`` records (written when a run starts), if any."""
    from evovlm.experiment import EXPERIMENT_RECORD

    record = folder / "results" / EXPERIMENT_RECORD
    try:
        return json.loads(record.read_text()).get("method")
    except (OSError, ValueError, AttributeError):
        return None


def _method(run: dict[str, Any]) -> str:
    """The run's method: as recorded (its experiment record, else its metrics.json), else the
    method most of whose rates the run's first round holds, the built-ins first (runs made before
    either record)."""
    first = next(iter(run["rounds"].values()))
    recorded = run.get("method") or first.get("method")
    if recorded:
        return recorded
    methods.load_plugins()
    held = set(first.get("rates", {}))
    ranked = [methods.get(name) for name in methods.BUILTIN]
    ranked += [m for m in methods.REGISTRY.values() if m.name not in methods.BUILTIN]
    return max(ranked, key=lambda m: len(held & set(m.rates))).name


def _rates(method: str, run: dict[str, Any]) -> tuple[str, ...]:
    """The rates ``method`` sets side by side; for a plug-in not loaded here, the rates the
    run's first round recorded."""
    methods.load_plugins()
    if method in methods.REGISTRY:
        return methods.REGISTRY[method].rates
    return tuple(next(iter(run["rounds"].values())).get("rates", {}))


def mixed_methods_warning(runs: list[dict[str, Any]]) -> str | None:
    """One line when the runs were made with different methods (their rates differ)."""
    names = [_method(run) for run in runs]
    if len(set(names)) < 2:
        return None
    named = ", ".join(f"{run['name']}: {m}" for run, m in zip(runs, names, strict=True))
    return (
        f"warning: the runs use different methods ({named}); the table shows the rates of "
        f"{names[0]}, which the other method's runs mostly lack"
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _eval_cell(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    return (
        f"{row['correct']}/{row['n']} = {row['accuracy']:.3f} "
        f"[{row['ci95_low']:.3f}, {row['ci95_high']:.3f}]"
    )


def table(runs: list[dict[str, Any]]) -> str:
    rates = _rates(_method(runs[0]), runs[0])
    roles = sorted({role for run in runs for m in run["rounds"].values() for role in m["rewards"]})
    header = ["round", "run", *rates, *(f"reward {r}" for r in roles), "eval accuracy [95% CI]"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = next((run["eval"].get("base") for run in runs if run["eval"].get("base")), None)
    if base:
        cells = ["base", "", *[""] * len(rates), *[""] * len(roles), _eval_cell(base)]
        lines.append("| " + " | ".join(cells) + " |")
    numbers = sorted({r for run in runs for r in run["rounds"]})
    for r in numbers:
        for run in runs:
            m = run["rounds"].get(r)
            if m is None:
                continue
            cells = [str(r), run["name"]]
            cells += [_fmt(m["rates"].get(k)) for k in rates]
            cells += [_fmt(m["rewards"].get(role, {}).get("mean")) for role in roles]
            cells.append(_eval_cell(run["eval"].get(f"round_{r}")))
            lines.append("| " + " | ".join(cells) + " |")
    if len(runs) >= 2:
        lines += ["", _leads(runs[0], runs[1], rates)]
    paired = paired_lines(runs)
    if paired:
        lines += ["", "Paired on the same items (exact McNemar, two-sided):", *paired]
    kinds = kind_table(runs)
    if kinds:
        lines += ["", kinds]
    return "\n".join(lines)


def _last_round(run: dict[str, Any]) -> int | None:
    rounds = [int(p.split("_")[1]) for p in run.get("items", {}) if p.startswith("round_")]
    return max(rounds) if rounds else None


def paired_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Each run's last evaluated round against its base, and with two runs, the first run's
    last round against the second's (the control) on the same items."""
    from evovlm.evaluate import paired_test

    lines = []
    comparisons = []
    for run in runs:
        last = _last_round(run)
        if last is not None and "base" in run["items"]:
            comparisons.append((run, f"round_{last}", run, "base"))
    if len(runs) >= 2:
        first, second = runs[0], runs[1]
        last = _last_round(first)
        if last is not None and f"round_{last}" in second["items"]:
            comparisons.append((first, f"round_{last}", second, f"round_{last}"))
    for run, policy, other, against in comparisons:
        own = f"{run['name']} {policy}"
        them = against if other is run else f"{other['name']} {against}"
        for row in paired_test(run["items"][policy], other["items"][against], own, them):
            lines.append(
                f"- {row['benchmark']}: {own} vs {them}: {row['policy_correct']} vs "
                f"{row['against_correct']} of {row['n']} ({row['difference']:+.3f}); right only "
                f"by {own} {row['only_policy']}, only by {them} {row['only_against']}; "
                f"p = {row['p']:.4f}"
            )
    return lines


def kind_table(runs: list[dict[str, Any]]) -> str:
    """Accuracy per item kind beside its chance level: the base, then each run's last round."""
    import polars as pl

    from evovlm.evaluate import kind_accuracy_table

    columns = []  # (label, policy results)
    base = next((run["items"]["base"] for run in runs if "base" in run["items"]), None)
    if base is not None:
        columns.append(("base", base))
    for run in runs:
        last = _last_round(run)
        if last is not None:
            columns.append((f"{run['name']} round {last}", run["items"][f"round_{last}"]))
    if not columns:
        return ""
    frames = [
        kind_accuracy_table(frame.with_columns(pl.lit(label).alias("policy")), [label])
        for label, frame in columns
    ]
    table_rows: dict[tuple, dict[str, str]] = {}
    chance: dict[tuple, float | None] = {}
    for frame in frames:
        for r in frame.iter_rows(named=True):
            key = (r["benchmark"], r["kind"] or "(no kind)")
            chance.setdefault(key, r["chance"])
            table_rows.setdefault(key, {})[r["policy"]] = f"{r['correct']}/{r['n']}"
    labels = [label for label, _ in columns]
    header = ["benchmark", "kind", "chance", *labels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, cells in table_rows.items():
        row = [*key, _fmt(chance[key], 2), *(cells.get(label, "") for label in labels)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _leads(first: dict[str, Any], second: dict[str, Any], rates) -> str:
    last = max(set(first["rounds"]) & set(second["rounds"]))
    one = min(first["rounds"])
    parts = []
    for key in rates:
        a = first["rounds"][last]["rates"].get(key)
        b = second["rounds"][last]["rates"].get(key)
        a1 = first["rounds"][one]["rates"].get(key)
        if a is None or b is None or a1 is None:
            continue
        parts.append(f"{key} {a - a1:+.3f} over round {one}, {a - b:+.3f} over {second['name']}")
    return f"round {last}, {first['name']}: " + "; ".join(parts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="evovlm compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (working directories)")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(folder) for folder in args.runs]
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 1
    warning = mixed_methods_warning(runs)
    if warning:
        print(warning, file=sys.stderr)
    print(table(runs))
    return 0
