# Input functions, targets and the global wildcard constraints. All Python of the workflow
# lives here; rules stay declarative.
import sys

from evovlm.config import ConfigError, validate_config

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as exc:
    sys.stderr.write(f"config error: {exc}\n")
    sys.exit(1)


wildcard_constraints:
    round=r"\d+",
    role=r"proposer|coder|solver",
    lineage=r"proposer|coder|solver|shared",
    stage=r"proposals|programs|answers|questions",
    policy=r"base|round_\d+",


scattergather:
    generate=config["shards"],


EMBEDDED = config["model"]["base"] == "embedded"
METHOD = config["method"]
if METHOD == "mmzero":
    ROLES = ["proposer", "coder", "solver"]
    STAGE_TABLES = {
        "proposals": "proposals",
        "programs": "programs",
        "answers": "answers",
    }
else:
    ROLES = ["proposer", "solver"]
    STAGE_TABLES = {"questions": "questions", "answers": "evolmm_answers"}
SHARED = config[METHOD]["share_weights"]
LINEAGES = ["shared"] if SHARED else ROLES


def evolmm_image_dir():
    """The EvoLMM image folder; 'embedded' = procedural charts rendered by a rule."""
    folder = config["evolmm"]["image_dir"]
    return "resources/demo-images" if folder == "embedded" else folder


def rounds():
    return range(1, config["rounds"] + 1)


def base_model():
    """Round 1's policy: the embedded tiny model (built by a rule) or the configured model."""
    if not EMBEDDED:
        return config["model"]["base"]
    return (
        "resources/tiny-warm" if config["warmup"]["enabled"] else "resources/tiny-base"
    )


def lineage(role):
    return "shared" if SHARED else role


def policy(role):
    """Input function: the policy folder a role samples from in round {round}."""

    def inner(wildcards):
        r = int(wildcards.round)
        if r == 1:
            return base_model() if EMBEDDED else []
        return f"results/round_{r - 1}/checkpoint/{lineage(role)}/config.json"

    return inner


def policy_path(role, wildcards):
    """The policy as a string for params (a hub id is not a file input)."""
    r = int(wildcards.round)
    if r == 1:
        return base_model()
    return f"results/round_{r - 1}/checkpoint/{lineage(role)}"


def shard_files(stage):
    def inner(wildcards):
        return gather.generate(
            f"results/round_{wildcards.round}/shards/{stage}/{{scatteritem}}.parquet"
        )

    return inner


def lineage_rewards(wildcards):
    roles = ROLES if wildcards.lineage == "shared" else [wildcards.lineage]
    return [f"results/round_{wildcards.round}/rewards/{role}.parquet" for role in roles]


def train_inputs(wildcards):
    """The round's sample tables (and images) the lineage's roles were scored on."""
    r = f"results/round_{wildcards.round}"
    if METHOD == "mmzero":
        names = ["proposals", "programs", "answers", "renders"]
    else:
        names = ["questions", "answers", "images"]
    return {name: f"{r}/{name}.parquet" for name in names}


def train_role(wildcards):
    """The role whose policy the lineage starts from (all roles share it when shared)."""
    return "proposer" if wildcards.lineage == "shared" else wildcards.lineage


def train_policy_input(wildcards):
    return policy(train_role(wildcards))(wildcards)


def eval_policies():
    """The policies evaluated: the base model, then each round's trained Solver."""
    return ["base"] + [f"round_{r}" for r in rounds()]


def eval_policy_path(wildcards):
    if wildcards.policy == "base":
        return base_model()
    return f"results/{wildcards.policy}/checkpoint/{lineage('solver')}"


def eval_policy_input(wildcards):
    if wildcards.policy == "base" and not EMBEDDED:
        return []  # a configured base model (folder or hub id) is not built by a rule
    if wildcards.policy == "base":
        return eval_policy_path(wildcards)
    return f"{eval_policy_path(wildcards)}/config.json"


def benchmark_params():
    """The eval keys that change the items (not the sampling settings)."""
    keys = ("builtin_items", "seed", "benchmarks", "max_items")
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
