import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.stages import job_log

    job_log(snakemake.log[0])  # stderr of this process and of those it starts (vLLM's engine)

    from evovlm.gpus import claim_gpu

    claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

    from evovlm.evaluate import EvalConfig, evaluate
    from evovlm.schema import BENCHMARK, EVAL, write_parquet
    from evovlm.stages import engine_from_config
    from evovlm.tables import read_or_exit

    p = snakemake.params
    frame = evaluate(
        engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
        read_or_exit(snakemake.input.benchmark, BENCHMARK),
        snakemake.wildcards.policy,
        EvalConfig.from_dict(p.eval),
        seed=p.seed,
        method=snakemake.config["method"],
    )
    write_parquet(frame, snakemake.output.results, EVAL)
    print(f"{frame['correct'].sum()}/{frame.height} correct", file=sys.stderr)
