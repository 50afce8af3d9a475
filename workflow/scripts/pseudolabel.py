"""pseudolabel rule: the round's sampling Solver labels the procedural benchmark items its own way
(m samples, majority, agreement, mid-band filter); the labels are graded against the answers."""

import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import start_engine_job

    job = start_engine_job(snakemake)  # the log, the GPUs, the policy's engine

    from evovlm import metrics
    from evovlm.methods.mmzero import pseudolabel
    from evovlm.methods.mmzero.rewards import MMZeroRewardConfig
    from evovlm.schema import BENCHMARK, write_parquet
    from evovlm.tables import read_or_exit

    p, round_ = job.params, job.round
    samples = pseudolabel.sample_labels(
        job.engine,
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
    previous = snakemake.input.get("previous_summary")
    if previous:  # round over round: agreement up while the kept labels get worse?
        from evovlm.report import read_json

        summary["collapse"] = pseudolabel.collapse_since(
            read_json(previous),
            read_or_exit(snakemake.input.previous_labels, None),
            summary,
            labels,
        )
    print(summary["overall"], summary["filter"], summary.get("collapse"), file=sys.stderr)
    # stop_on_collapse is read from config, not a param: switching it never reruns the check
    stop = pseudolabel.collapse_stop_message(summary.get("collapse") or {})
    if stop and snakemake.config.get("stop_on_collapse"):
        print(stop, file=sys.stderr, flush=True)  # the job's log: show-failed-logs prints it
        raise SystemExit(1)
    metrics.write_json(summary, snakemake.output.summary)
