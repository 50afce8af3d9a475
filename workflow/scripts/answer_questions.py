import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.jobs import start_engine_job

    job = start_engine_job(snakemake)  # the log, the GPUs, the policy's engine

    from evovlm.methods.evolmm import stages as evolmm
    from evovlm.schema import EVOLMM_ANSWERS, IMAGES, QUESTIONS, write_parquet
    from evovlm.tables import read_or_exit

    p = job.params
    frame = evolmm.answer_questions(
        job.engine,
        read_or_exit(snakemake.input.images, IMAGES),
        read_or_exit(snakemake.input.questions, QUESTIONS),
        round_=job.round,
        sampling=p.sampling,
        seed=p.seed,
        shard=job.shard,
    )
    write_parquet(frame, snakemake.output.answers, EVOLMM_ANSWERS)
    print(f"{frame.height} answers", file=sys.stderr)
