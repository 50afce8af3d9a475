import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.stages import job_log

    job_log(snakemake.log[0])  # stderr of this process and of those it starts (vLLM's engine)

    from evovlm.gpus import claim_gpu

    claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

    from evovlm import evolmm
    from evovlm.schema import IMAGES, QUESTIONS, write_parquet
    from evovlm.stages import Shard, engine_from_config
    from evovlm.tables import read_or_exit

    p = snakemake.params
    frame = evolmm.ask_questions(
        engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
        read_or_exit(snakemake.input.images, IMAGES),
        round_=int(snakemake.wildcards.round),
        sampling=p.sampling,
        seed=p.seed,
        shard=Shard.parse(snakemake.wildcards.scatteritem),
    )
    write_parquet(frame, snakemake.output.questions, QUESTIONS)
    print(f"{frame.height} questions, {frame['parse_ok'].sum()} parsed", file=sys.stderr)
