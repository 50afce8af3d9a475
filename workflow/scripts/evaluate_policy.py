import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import start_engine_job

    job = start_engine_job(snakemake)  # the log, the GPUs, the policy's engine

    from evovlm import methods
    from evovlm.evaluate import EvalConfig, evaluate
    from evovlm.schema import BENCHMARK, EVAL, write_parquet
    from evovlm.tables import read_or_exit

    p = job.params
    frame = evaluate(
        job.engine,
        read_or_exit(snakemake.input.benchmark, BENCHMARK),
        snakemake.wildcards.policy,
        EvalConfig.from_dict(p.eval),
        seed=p.seed,
        method=methods.from_config(snakemake.config).name,  # a plug-in's module loaded
    )
    write_parquet(frame, snakemake.output.results, EVAL)
    print(f"{frame['correct'].sum()}/{frame.height} correct", file=sys.stderr)
