"""pseudolabel rule: the round's sampling Solver labels the procedural benchmark items its own way
(m samples, majority, agreement, mid-band filter); the labels are graded against the answers."""

import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.stages import job_log

    job_log(snakemake.log[0])  # stderr of this process and of those it starts (vLLM's engine)

    from evovlm.gpus import claim_gpu

    claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

    from evovlm import metrics, pseudolabel
    from evovlm.rewards import MMZeroRewardConfig
    from evovlm.schema import BENCHMARK, write_parquet
    from evovlm.stages import engine_from_config
    from evovlm.tables import read_or_exit

    p = snakemake.params
    round_ = int(snakemake.wildcards.round)
    samples = pseudolabel.sample_labels(
        engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
        read_or_exit(snakemake.input.benchmark, BENCHMARK),
        round_=round_,
        m=p.m,
        sampling=p.sampling,
        seed=p.seed,
    )
    labels = pseudolabel.label_table(samples, MMZeroRewardConfig.from_dict(p.rewards))
    write_parquet(samples, snakemake.output.samples, None)
    write_parquet(labels, snakemake.output.labels, None, round_=round_)
    summary = {"round": round_, "policy": p.policy, **pseudolabel.summarize(labels)}
    metrics.write_json(summary, snakemake.output.summary)
    print(summary["overall"], summary["filter"], file=sys.stderr)
