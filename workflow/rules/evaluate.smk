# Evaluation: the base model and every round's Solver on the same benchmark items, and the
# MM-Zero Solver's own labels of those items each round (pseudolabel).


rule build_benchmark:
    """The evaluation items: procedural charts and diagrams with exact answers (rendered by the
    sandbox), plus any local benchmark files from eval.benchmarks."""
    input:
        files=[bench["path"] for bench in config["eval"]["benchmarks"]],
    output:
        benchmark="results/eval/benchmark.parquet",
    log:
        "logs/build_benchmark.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        eval=benchmark_params(),
        render=config["render"],
    script:
        "../scripts/build_benchmark.py"


rule evaluate_policy:
    """One answer per benchmark item from a policy: 'base' or 'round_<r>' (that round's Solver)."""
    input:
        policy=get_eval_policy,
        benchmark="results/eval/benchmark.parquet",
    output:
        results="results/eval/{policy}.parquet",
    log:
        "logs/evaluate_policy/{policy}.log",
    benchmark:
        "logs/benchmarks/evaluate_policy/eval_{policy}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_eval_policy_folder,
        eval=config["eval"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/evaluate_policy.py"


rule summarize_eval:
    """Accuracy with a 95% interval per benchmark and policy, the base model first; per item kind
    beside its chance level; each round against the base, paired on the items (exact McNemar).
    """
    input:
        results=expand("results/eval/{policy}.parquet", policy=eval_policies()),
    output:
        accuracy="results/eval/accuracy.parquet",
        by_kind="results/eval/accuracy_by_kind.parquet",
        paired="results/eval/paired.parquet",
    log:
        "logs/summarize_eval.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        order=eval_policies(),
    script:
        "../scripts/summarize_eval.py"


rule pseudolabel:
    """The round's sampling Solver labels the procedural benchmark items its own way (m samples,
    majority, agreement, mid-band filter); each label is graded against the exact answer.
    """
    input:
        unpack(get_previous_pseudolabels),
        policy=get_policy("solver"),
        benchmark="results/eval/benchmark.parquet",
    output:
        samples="results/round_{round}/pseudolabel/samples.parquet",
        labels="results/round_{round}/pseudolabel/labels.parquet",
        summary="results/round_{round}/pseudolabel/summary.json",
    log:
        "logs/pseudolabel/round_{round}.log",
    benchmark:
        "logs/benchmarks/pseudolabel/round_{round}.tsv"
    conda:
        "../../envs/evovlm-gpu.yaml"
    resources:
        gpu=generation_gpus(),
    params:
        policy=get_policy_folder("solver"),
        m=config["mmzero"]["solver"]["m"],
        sampling=config["mmzero"]["solver"],
        rewards=config["rewards"]["mmzero"],
        seed=config["seed"],
        dtype=config["model"]["dtype"],
    script:
        "../scripts/pseudolabel.py"
