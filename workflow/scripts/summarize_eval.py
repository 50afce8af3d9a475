import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import polars as pl  # noqa: E402

from evovlm.evaluate import accuracy_table, kind_accuracy_table, paired_table  # noqa: E402
from evovlm.schema import EVAL, write_parquet  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

# diagonal: answers recorded before items had a kind/chance column (null there)
results = pl.concat(
    [read_or_exit(path, EVAL) for path in snakemake.input.results], how="diagonal_relaxed"
)
order = snakemake.params.order
table = accuracy_table(results, order=order)
by_kind = kind_accuracy_table(results, order=order)
paired = paired_table(results, order=order)
write_parquet(table, snakemake.output.accuracy, None)
write_parquet(by_kind, snakemake.output.by_kind, None)
write_parquet(paired, snakemake.output.paired, None)
with pl.Config(tbl_rows=-1, tbl_cols=-1):
    print(table, by_kind, paired, sep="\n", file=sys.stderr)
