import sys

# The job runs in the process Snakemake started only: vLLM starts its engine process with spawn
# (always on CPU), which imports this file again as the main module.
if __name__ == "__main__":
    from evovlm.stages import job_log

    job_log(snakemake.log[0])  # stderr of this process and of those it starts (vLLM's engine)

    from evovlm.gpus import claim_gpu

    claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

    from evovlm import mmzero
    from evovlm.schema import PROPOSALS, write_parquet
    from evovlm.stages import Shard, engine_from_config

    p = snakemake.params
    frame = mmzero.propose(
        engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
        round_=int(snakemake.wildcards.round),
        topics=mmzero.seed_topics(p.topics),
        prompts_per_topic=p.prompts_per_topic,
        sampling=p.sampling,
        seed=p.seed,
        shard=Shard.parse(snakemake.wildcards.scatteritem),
    )
    write_parquet(frame, snakemake.output.proposals, PROPOSALS)
    print(f"{frame.height} proposals, {frame['parse_ok'].sum()} parsed", file=sys.stderr)
