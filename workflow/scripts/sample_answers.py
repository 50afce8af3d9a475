import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import start_engine_job

    job = start_engine_job(snakemake)  # the log, the GPUs, the policy's engine

    from evovlm.methods.mmzero import stages as mmzero
    from evovlm.schema import ANSWERS, PROGRAMS, PROPOSALS, RENDERS, write_parquet
    from evovlm.tables import read_or_exit

    p = job.params
    frame = mmzero.sample_answers(
        job.engine,
        read_or_exit(snakemake.input.proposals, PROPOSALS),
        read_or_exit(snakemake.input.programs, PROGRAMS),
        read_or_exit(snakemake.input.renders, RENDERS),
        round_=job.round,
        m=p.m,
        sampling=p.sampling,
        seed=p.seed,
        shard=job.shard,
    )
    write_parquet(frame, snakemake.output.answers, ANSWERS)
    print(f"{frame.height} answers", file=sys.stderr)
