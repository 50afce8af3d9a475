# Input functions, targets and the global wildcard constraints. All Python of the workflow
# lives here; rules stay declarative.
import copy
import os
import sys
from pathlib import Path

from evovlm import methods
from evovlm import record as experiment_record
from evovlm.config import ConfigError, base_kind, check_hub_model, quiet_progress_bars
from evovlm.experiment import (
    check_image_dir,
    check_results_identity,
    record_experiment,
    validate_config,
)
from evovlm.gpus import check_gpu_setup, visible_gpus
from evovlm.tiny import recipe_digest

# The experiment's config record (results/config.yaml, evovlm.record): once a run wrote it, the
# folder's commands start from it, with the command line's overrides on top.
NEW_EXPERIMENT = experiment_record.pop_flag(config)
REMEMBERED = experiment_record.load_record()
if REMEMBERED is not None:
    _remembered = experiment_record.layer(
        REMEMBERED, workflow.config_settings.overwrite_config
    )
    config.clear()
    config.update(_remembered)

try:
    validate_config(config)  # against the package's schema (evovlm/schemas/)
except ConfigError as exc:
    sys.stderr.write(f"config error: {exc}\n")
    sys.exit(1)


# Conda-deployed jobs (envs/*.yaml hold the pinned stack only) import evovlm from this
# workflow's own source tree; a cluster job re-reads this file, so it gets the same path.
if "conda" in map(str, workflow.deployment_settings.deployment_method):
    _paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    _src = str(Path(workflow.main_snakefile).parent / "src")
    os.environ.update(PYTHONPATH=os.pathsep.join([_src, *(p for p in _paths if p)]))


def _check_image_dir():
    """Before any job, dry runs too: EvoLMM's image folder holds a readable image (one line).
    Every process checks it: the check also expands ~ in the folder the rules see.
    """
    try:
        check_image_dir(config)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.exit(1)


_check_image_dir()


def check_results_record():
    """onstart (not a dry run), before the first job: results/ must have been made with this
    method, base model and image folder (one line, exit 1); a first run records them in
    results/experiment.json."""
    try:
        check_results_identity(config, "results")
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.exit(1)
    record_experiment(config, "results")


def check_config_record():
    """Stop (one line, before any job) when the command line makes this folder's results another
    experiment than its record, unless new_experiment=true asks for it."""
    if REMEMBERED is None or not workflow.is_main_process:
        return
    recorded = copy.deepcopy(REMEMBERED)
    try:  # defaults of keys newer than the record are no change
        validate_config(recorded)
    except ConfigError:
        recorded = REMEMBERED
    changed = experiment_record.changed_keys(recorded, config)
    if changed and not NEW_EXPERIMENT:
        message = experiment_record.change_message(recorded, config, changed)
        sys.stderr.write(f"config error: {message}\n")
        sys.exit(1)
    print(
        f"evovlm: config from {experiment_record.RECORD} (this folder's experiment)"
        + (
            f", changed by new_experiment=true: {', '.join(changed)}" if changed else ""
        ),
        file=sys.stderr,
    )


check_config_record()


def write_config_record():
    """onstart: the run's resolved config becomes (or updates) this folder's record."""
    if workflow.is_main_process:
        experiment_record.write_record(dict(config))


quiet_progress_bars()  # jobs' progress bars: a redraw every 30 s in their logs


def cluster_run():
    """True under a cluster executor (e.g. slurm). Snakemake picks the executor plugin only after
    parsing the Snakefile, but it keeps `--jobs` as the node limit (`_nodes`) only for a remote
    executor; a local run turns `--jobs` into `--cores` (snakemake/cli.py). So a local dry run
    with `-j N` counts as a cluster run here (no GPU limit, no GPU check: harmless)."""
    plugin = workflow.executor_plugin
    if plugin is not None:
        return plugin.common_settings.non_local_exec
    return workflow.nodes is not None


def generation_gpus():
    """GPUs one generation job (and the evaluation) takes: engine.tensor_parallel_size, over
    which vLLM spreads one model; 1 for the transformers engine, which uses one device.
    """
    engine = config["engine"]
    return 1 if engine["backend"] == "hf" else engine["tensor_parallel_size"]


def train_gpus():
    """GPUs one training job takes: one per process (train.num_processes)."""
    return config["train"]["num_processes"]


def _limit_gpu_jobs():
    """Local runs: GPUs in use at once = GPUs visible (on a CPU-only machine, where the GPU
    rules run on the CPU, one job at a time); `--resources gpu=N` wins. Each job asks for its
    GPU count (`resources: gpu=`) and takes that many devices (evovlm.gpus.claim_gpu). Cluster
    runs: the scheduler grants each job its `gpu` count (the slurm plugin's --gpus)."""
    if cluster_run() or not workflow.is_main_process:
        return
    given = "gpu" in workflow.global_resources
    found = visible_gpus()
    if given:
        limit = workflow.global_resources["gpu"].value
        # Snakemake would scale each job's gpu= down to the limit: fewer GPUs than the model
        # is spread over, found only when vLLM starts.
        if found and limit < generation_gpus():
            sys.stderr.write(
                f"config error: config key 'engine.tensor_parallel_size': "
                f"{generation_gpus()} GPUs per job, but --resources gpu={limit}; "
                f"fix: give --resources gpu={generation_gpus()} or more, or a smaller "
                "engine.tensor_parallel_size\n"
            )
            sys.exit(1)
    else:
        limit = len(found) or max(generation_gpus(), train_gpus())
        workflow.register_resource("gpu", limit)
    print(
        f"evovlm: at most {limit} GPU job(s) at once "
        f"({'--resources gpu' if given else 'GPUs visible'}: "
        f"{len(found)} GPU(s) {','.join(found) or 'none, GPU rules run on the CPU'})"
        + (
            f"; {generation_gpus()} GPUs per generation job"
            if generation_gpus() > 1
            else ""
        ),
        file=sys.stderr,
    )


_limit_gpu_jobs()


# Small bookkeeping jobs run on the submit host on a cluster (no queue wait, no 8 GB slot);
# fetch_base_model too: compute nodes often have no internet.
localrules:
    gather_shards,
    summarize_round,
    summarize_eval,
    report_overview,
    build_benchmark,
    build_demo_images,
    fetch_base_model,
    sample_images,


wildcard_constraints:
    round=r"\d+",
    role="|".join(methods.all_roles()),
    lineage="|".join([*methods.all_roles(), "shared"]),
    stage="|".join(methods.all_stages()),
    policy=r"base|round_\d+",


scattergather:
    generate=config["shards"],


BASE = config["model"]["base"]
BASE_KIND = base_kind(BASE)  # embedded | local | hub
METHOD = config["method"]
METHOD_PLUGIN = methods.get(
    METHOD
)  # roles, stages, scoring, summary (src/evovlm/methods)
ROLES = list(METHOD_PLUGIN.roles)
STAGE_TABLES = dict(METHOD_PLUGIN.stages)  # generation stage -> table spec
SHARED = config[METHOD]["share_weights"]
LINEAGES = ["shared"] if SHARED else ROLES


def evolmm_image_dir():
    """The EvoLMM image folder; 'embedded' = procedural charts rendered by a rule."""
    folder = config["evolmm"]["image_dir"]
    return "resources/demo-images" if folder == "embedded" else folder


def rounds():
    return range(1, config["rounds"] + 1)


# Built resources: this working directory's resources/ (the default), or a shared folder
# (config resources_dir) where each build is named by a hash of its recipe, so experiments with
# the same recipe share one build and a different recipe never reuses it.
RESOURCES = os.path.normpath(os.path.expanduser(config["resources_dir"]))
SHARED_RESOURCES = RESOURCES != "resources"


def resource(kind):
    """Path of the embedded build ``kind`` (tiny-base, tiny-warm)."""
    if not SHARED_RESOURCES:
        return f"resources/{kind}"
    return f"{RESOURCES}/{kind}-{recipe_digest(kind, config)}"


TINY_BASE = resource("tiny-base")
TINY_WARM = resource("tiny-warm")


def hub_model_dir():
    """Where fetch_base_model puts a hub id (revision in the name: a new pin, a new folder)."""
    revision = config["model"]["revision"]
    name = "--".join(Path(BASE).parts) + (f"@{revision}" if revision else "")
    return f"{RESOURCES}/hub/{name}"


def base_model():
    """Round 1's policy: the embedded tiny model (built by a rule), the hub model (fetched once
    by a rule) or the configured local folder."""
    if BASE_KIND == "hub":
        return hub_model_dir()
    if BASE_KIND == "local":
        return BASE
    return TINY_WARM if config["warmup"]["enabled"] else TINY_BASE


# A hub id is checked before any job runs (one line naming model.base, nothing deleted): cached
# or known to the hub. Skipped once fetched, and in cluster jobs (the submit host checked it).
if (
    BASE_KIND == "hub"
    and workflow.is_main_process
    and not os.path.isdir(hub_model_dir())
):
    try:
        check_hub_model(BASE, config["model"]["revision"])
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.exit(1)


# A GPU that is visible but unusable (driver too old for the jobs' CUDA), or a real model that
# `engine.backend: auto` would put on the CPU, stops the run here with one line: fail loudly,
# not slowly. Local runs only (a cluster's nodes are not the submit host); nvidia-smi, no CUDA.
def _check_gpu_setup():
    if cluster_run() or not workflow.is_main_process:
        return
    uses_conda = "conda" in map(str, workflow.deployment_settings.deployment_method)
    try:
        check_gpu_setup(config, conda=uses_conda)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.exit(1)


_check_gpu_setup()


def lineage(role):
    return "shared" if SHARED else role


# Input functions (`get_*`, one per need): each takes the job's wildcards. The policies first:
# round r samples from the policy trained in round r - 1 (0: the base model).


def policy_folder(role, trained_in):
    """The policy a role samples from: the base model (trained_in 0) or the checkpoint of the
    role's lineage trained in that round."""
    if trained_in == 0:
        return base_model()
    return f"results/round_{trained_in}/checkpoint/{lineage(role)}"


def policy_file(role, trained_in):
    """The file that stands for that policy among a job's inputs: a checkpoint's config.json
    (train.smk), the base model's folder when a rule makes it, nothing for a configured local
    folder."""
    if trained_in == 0:
        return [] if BASE_KIND == "local" else base_model()
    return f"{policy_folder(role, trained_in)}/config.json"


def _role(role, wildcards):
    """`role`, or for None the role whose policy the job's {lineage} starts from (the
    Proposer's, which every role shares, when shared)."""
    if role is not None:
        return role
    return "proposer" if wildcards.lineage == "shared" else wildcards.lineage


def get_policy(role=None):
    """Input: the policy `role` samples from in round {round} (None: the {lineage}'s role)."""
    return lambda w: policy_file(_role(role, w), int(w.round) - 1)


def get_policy_folder(role=None):
    """Params: that policy as a string (a hub id is not a file input)."""
    return lambda w: policy_folder(_role(role, w), int(w.round) - 1)


def _evaluated_round(wildcards):
    """The round whose Solver {policy} names: 0 for 'base', r for 'round_<r>'."""
    if wildcards.policy == "base":
        return 0
    return int(wildcards.policy.removeprefix("round_"))


def get_eval_policy(wildcards):
    """Input: the policy {policy} evaluates, the base model or a round's Solver."""
    return policy_file(METHOD_PLUGIN.solver.role, _evaluated_round(wildcards))


def get_eval_policy_folder(wildcards):
    """Params: that policy as a string."""
    return policy_folder(METHOD_PLUGIN.solver.role, _evaluated_round(wildcards))


def get_shards(wildcards):
    """The configured method's shards of a generation {stage} (each method's generation rules
    write under their own results/round_{round}/shards/<method>/)."""
    return gather.generate(
        f"results/round_{wildcards.round}/shards/{METHOD}/{wildcards.stage}/"
        "{scatteritem}.parquet"
    )


def get_lineage_rewards(wildcards):
    roles = ROLES if wildcards.lineage == "shared" else [wildcards.lineage]
    return [f"results/round_{wildcards.round}/rewards/{role}.parquet" for role in roles]


def get_round_tables(wildcards):
    """The round's tables the method scores, summarises and trains on (name -> path)."""
    r = f"results/round_{wildcards.round}"
    return {name: f"{r}/{name}.parquet" for name in METHOD_PLUGIN.tables}


def get_summary_files(wildcards):
    """Extra per-round files the method's summary reads (e.g. EvoLMM's image counts)."""
    r = f"results/round_{wildcards.round}"
    return {name: f"{r}/{path}" for name, path in METHOD_PLUGIN.summary_files.items()}


def sample_options():
    """How the method turns scored samples into training rows (MM-Zero's Solver questions and
    Coder render-rate band) and trains them (EvoLMM's Proposer update ratio)."""
    return METHOD_PLUGIN.sample_options(config)


def get_steps_from(wildcards):
    """The training summary of the lineage whose steps set this one's (EvoLMM's Proposer:
    the Solver's over evolmm.proposer_update_ratio) when they depend on its groups (passes).
    """
    ratio = sample_options().get("update_ratio", {})
    other = ratio.get(wildcards.lineage, [None])[0]
    if other not in LINEAGES or config["train"].get("passes") is None:
        return []
    return [f"results/round_{wildcards.round}/train/{other}.json"]


def get_collapse_check(wildcards):
    """With stop_on_collapse, the round's collapse check, which fails the run before training."""
    if (
        config["stop_on_collapse"]
        and pseudolabel_enabled()
        and int(wildcards.round) > 1
    ):
        return f"results/round_{wildcards.round}/pseudolabel/summary.json"
    return []


def eval_policies():
    """The policies evaluated: the base model, then each round's trained Solver."""
    return ["base"] + [f"round_{r}" for r in rounds()]


def benchmark_params():
    """The eval keys that change the items (not the sampling settings)."""
    keys = ("builtin_items", "see_items", "seed", "benchmarks", "max_items")
    return {key: config["eval"][key] for key in keys}


def all_targets():
    targets = []
    for r in rounds():
        targets.append(f"results/round_{r}/metrics.json")
        targets += [
            f"results/round_{r}/checkpoint/{name}/config.json" for name in LINEAGES
        ]
    if config["eval"]["enabled"]:
        targets.append("results/eval/accuracy.parquet")
    return targets


# The pseudo-label check (workflow/rules/evaluate.smk) and the report (workflow/rules/report.smk).


def pseudolabel_enabled():
    """The pseudo-label check needs a method that makes them (MM-Zero) and the built-in
    procedural benchmark items."""
    return (
        METHOD_PLUGIN.pseudolabels
        and config["eval"]["enabled"]
        and config["eval"]["builtin_items"] > 0
    )


def get_previous_pseudolabels(wildcards):
    """The previous round's labels, which the round's collapse check compares against."""
    r = int(wildcards.round)
    if r == 1:
        return {}
    folder = f"results/round_{r - 1}/pseudolabel"
    return {
        "previous_summary": f"{folder}/summary.json",
        "previous_labels": f"{folder}/labels.parquet",
    }


def get_run_summary_inputs(wildcards):
    inputs = {
        "metrics": [f"results/round_{r}/metrics.json" for r in rounds()],
        "pseudolabels": [],
    }
    if config["eval"]["enabled"]:
        inputs["accuracy"] = "results/eval/accuracy.parquet"
    if pseudolabel_enabled():
        inputs["pseudolabels"] = [
            f"results/round_{r}/pseudolabel/summary.json" for r in rounds()
        ]
    return inputs


def get_overview_inputs(wildcards):
    """The landing page reads what the summary reads, and the pseudo-label tables."""
    inputs = get_run_summary_inputs(wildcards)
    inputs["labels"] = [
        path.replace("summary.json", "labels.parquet")
        for path in inputs["pseudolabels"]
    ]
    if config["eval"]["enabled"]:
        inputs["by_kind"] = "results/eval/accuracy_by_kind.parquet"
        inputs["paired"] = "results/eval/paired.parquet"
    return inputs


def report_targets():
    if not METHOD_PLUGIN.report:
        return []
    targets = ["results/summary.parquet", "results/report/overview.html"]
    for r in rounds():
        targets.append(f"results/report/round_{r}/gallery.html")
        targets.append(f"results/report/round_{r}/rewards.png")
        targets += [
            f"results/round_{r}/checkpoint/{name}/README.md" for name in LINEAGES
        ]
    return targets
