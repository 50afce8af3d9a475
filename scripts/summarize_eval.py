import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import polars as pl  # noqa: E402

from evovlm.evaluate import accuracy_table  # noqa: E402
from evovlm.schema import EVAL, write_parquet  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

results = pl.concat([read_or_exit(path, EVAL) for path in snakemake.input.results])
table = accuracy_table(results, order=snakemake.params.order)
write_parquet(table, snakemake.output.accuracy, None)
with pl.Config(tbl_rows=-1, tbl_cols=-1):
    print(table, file=sys.stderr)
