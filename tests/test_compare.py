"""``evovlm compare``: per-round table of runs side by side, and the lead of the first run."""

import json

import polars as pl

from evovlm import compare


def _run(folder, rates_per_round, accuracy=None):
    for r, rates in enumerate(rates_per_round, start=1):
        d = folder / f"results/round_{r}"
        d.mkdir(parents=True)
        metrics = {"rates": rates, "rewards": {"solver": {"mean": 0.1 * r}}}
        (d / "metrics.json").write_text(json.dumps(metrics))
    if accuracy:
        (folder / "results/eval").mkdir(parents=True)
        pl.DataFrame(accuracy).write_parquet(folder / "results/eval/accuracy.parquet")
    return folder


def test_two_runs_side_by_side_with_the_lead(tmp_path):
    rates = lambda p: {"parse_rate": p, "render_rate": 0.5, "solver_agreement": None}  # noqa: E731
    trained = _run(
        tmp_path / "trained",
        [rates(0.5), rates(0.7)],
        {
            "policy": ["base", "round_1", "round_2"],
            "correct": [1, 2, 9],
            "n": [64, 64, 64],
            "accuracy": [1 / 64, 2 / 64, 9 / 64],
            "ci95_low": [0.0, 0.01, 0.07],
            "ci95_high": [0.08, 0.1, 0.25],
        },
    )
    control = _run(tmp_path / "control", [rates(0.5), rates(0.55)])
    out = compare.table([compare.load_run(trained), compare.load_run(control)])
    lines = out.splitlines()
    assert lines[0].startswith("| round | run | parse_rate | render_rate | solver_agreement")
    assert "| base |" in lines[2] and "1/64" in lines[2]
    assert "| 2 | trained | 0.700 | 0.500 |  |" in out
    assert "9/64 = 0.141 [0.070, 0.250]" in out
    assert "parse_rate +0.200 over round 1, +0.150 over control" in out
    assert "render_rate +0.000 over round 1, +0.000 over control" in out


def test_a_folder_without_rounds_is_one_error_line(tmp_path, capsys):
    assert compare.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out.startswith("error: ")


def test_a_run_named_by_dot_is_named_by_its_folder(tmp_path, monkeypatch, capsys):
    run = _run(tmp_path / "trained", [{"parse_rate": 0.5}])
    monkeypatch.chdir(run)
    assert compare.load_run(".")["name"] == "trained"
    assert compare.main(["."]) == 0
    assert "| 1 | trained |" in capsys.readouterr().out


def test_two_methods_side_by_side_get_a_warning_line(tmp_path, capsys):
    mmzero = _run(tmp_path / "mm", [{"parse_rate": 0.5, "render_rate": 0.4}])
    evolmm = _run(tmp_path / "evo", [{"parse_rate": 0.6, "mean_answer_share": 0.3}])
    assert compare.main([str(mmzero), str(evolmm)]) == 0
    captured = capsys.readouterr()
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: the runs use different methods")
    assert "mm: mmzero" in warning[0] and "evo: evolmm" in warning[0]
    # the same method: no warning (the method recorded when the run started counts)
    (evolmm / "results/experiment.json").write_text(json.dumps({"method": "mmzero"}))
    assert compare.main([str(mmzero), str(evolmm)]) == 0
    assert capsys.readouterr().err == ""
