# The report: per-round figures, a gallery, pseudo-label accuracy, training curves and
# results/summary.parquet. `snakemake --report report.html` collects every report() output.


rule plot_round:
    """The round's figures: reward per role, funnel rates, render status, agreement, GRPO curves."""
    input:
        metrics="results/round_{round}/metrics.json",
        train=expand("results/round_{{round}}/train/{lineage}.json", lineage=LINEAGES),
    output:
        rewards=report(
            "results/report/round_{round}/rewards.png",
            caption="../report/rewards.rst",
            category="Round {round}",
            subcategory="Rewards",
            labels={"round": "{round}", "figure": "reward per role"},
        ),
        rates=report(
            "results/report/round_{round}/rates.png",
            caption="../report/rates.rst",
            category="Round {round}",
            subcategory="Funnel",
            labels={"round": "{round}", "figure": "funnel rates"},
        ),
        status=report(
            "results/report/round_{round}/status.png",
            caption="../report/status.rst",
            category="Round {round}",
            subcategory="Funnel",
            labels={"round": "{round}", "figure": "status classes"},
        ),
        agreement=report(
            "results/report/round_{round}/agreement.png",
            caption="../report/agreement.rst",
            category="Round {round}",
            subcategory="Agreement",
            labels={"round": "{round}", "figure": "agreement histograms"},
        ),
        training=report(
            "results/report/round_{round}/training.png",
            caption="../report/training.rst",
            category="Training",
            subcategory="GRPO curves",
            labels={"round": "{round}", "figure": "GRPO curves"},
        ),
    log:
        "logs/plot_round/round_{round}.log",
    conda:
        "../../envs/evovlm.yaml"
    script:
        "../scripts/plot_round.py"


rule build_gallery:
    """Sampled images of the round beside their caption, questions, answers and rewards."""
    input:
        unpack(get_round_tables),
        rewards=expand("results/round_{{round}}/rewards/{role}.parquet", role=ROLES),
    output:
        gallery=report(
            "results/report/round_{round}/gallery.html",
            caption="../report/gallery.rst",
            category="Round {round}",
            subcategory="Gallery",
            labels={"round": "{round}", "figure": "gallery"},
        ),
    log:
        "logs/build_gallery/round_{round}.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        images=12,
        seed=config["seed"],
    script:
        "../scripts/build_gallery.py"


rule summarize_run:
    """results/summary.parquet (one row per round) and the across-round figures."""
    input:
        unpack(get_run_summary_inputs),
    output:
        summary="results/summary.parquet",
        rounds=report(
            "results/report/rounds.png",
            caption="../report/rounds.rst",
            category="Summary",
            subcategory="Across rounds",
            labels={"figure": "rates and rewards per round"},
        ),
        eval=report(
            "results/report/eval.png",
            caption="../report/eval.rst",
            category="Summary",
            subcategory="Evaluation",
            labels={"figure": "accuracy per policy"},
        ),
        pseudolabels=report(
            "results/report/pseudolabels.png",
            caption="../report/pseudolabels.rst",
            category="Summary",
            subcategory="Pseudo-labels",
            labels={"figure": "pseudo-label accuracy"},
        ),
    log:
        "logs/summarize_run.log",
    conda:
        "../../envs/evovlm.yaml"
    script:
        "../scripts/summarize_run.py"


rule report_overview:
    """The report's landing page (workflow/report/workflow.rst shows it): evaluation with Wilson
    intervals, the rates per round with standard errors, pseudo-label accuracy, the collapse
    warning and the run's config."""
    input:
        unpack(get_overview_inputs),
    output:
        overview=report(
            "results/report/overview.html",
            caption="../report/overview.rst",
            category="Overview",
            labels={"figure": "did it improve? (tables and config)"},
        ),
    log:
        "logs/report_overview.log",
    conda:
        "../../envs/evovlm.yaml"
    script:
        "../scripts/summarize_overview.py"


rule write_model_card:
    """README.md of a checkpoint: base model, method, role, round, settings and the round's rates."""
    input:
        config="results/round_{round}/checkpoint/{lineage}/config.json",
        summary="results/round_{round}/train/{lineage}.json",
        metrics="results/round_{round}/metrics.json",
    output:
        card="results/round_{round}/checkpoint/{lineage}/README.md",
    log:
        "logs/write_model_card/round_{round}.{lineage}.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        base_model=config["model"]["base"],
    script:
        "../scripts/write_model_card.py"
