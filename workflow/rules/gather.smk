# Gather a generation stage's shards into one table per round.


rule gather_shards:
    """Concatenate a stage's shards in stable id order (schema checked on read and write)."""
    input:
        shards=get_shards,
    output:
        table="results/round_{round}/{stage}.parquet",
    log:
        "logs/gather_shards/round_{round}.{stage}.log",
    conda:
        "../../envs/evovlm.yaml"
    params:
        table=lambda w: STAGE_TABLES[w.stage],
    script:
        "../scripts/gather_shards.py"
