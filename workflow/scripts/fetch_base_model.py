import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.modeling import fetch_model  # noqa: E402

p = snakemake.params
path = fetch_model(p.repo_id, snakemake.output.model, revision=p.revision)
print(f"fetched {p.repo_id} (revision {p.revision or 'main'}) into {path}", file=sys.stderr)
