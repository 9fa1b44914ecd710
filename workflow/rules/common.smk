# Shared set-up of the dnalift workflow: config validation, paths, helpers.
#
# Paths in the config are relative to the working directory (`--directory`), except the
# shipped example model, which is looked up in the workflow's own checkout (not in
# workflow.basedir, which is the including workflow's directory when dnalift is a module).

import os
import shlex

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("8.0")


validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"].rstrip("/")
LOGS = config["logs"].rstrip("/")
SIM = config["simulated"]
GEN = config["genome"]
SCORE = config["score"]
RES = config["resources"]
CLUSTER = config["cluster"]

SIM_DIR = f"{RESULTS}/simulated"
SIM_DATA = f"{SIM_DIR}/data"
GEN_DIR = f"{RESULTS}/genome"

#: Input length of the shipped example model.
SHIPPED_MODEL_LENGTH = 200

# TensorFlow uses every core of the machine unless told otherwise; keep each job to the
# threads it declared (local runs with --cores and cluster cpus-per-task alike).
TF_THREADS = ("export TF_NUM_INTRAOP_THREADS={threads} TF_NUM_INTEROP_THREADS=1 "
              "OMP_NUM_THREADS={threads}; ")


#: The workflow's own checkout (two levels above this file), when it is a local directory
#: (None for a module loaded from github(...) or another remote source).
WORKFLOW_DIR = (
    os.path.dirname(os.path.dirname(os.path.abspath(workflow.current_basedir.path)))
    if workflow.current_basedir.is_local else None)


def shipped_model():
    """The example model committed with dnalift (data/simulated/model.h5): from the
    workflow's checkout, else from the checkout of the installed dnalift package."""
    from dnalift.simulated.simulate import default_motif_path

    candidates = [os.path.join(d, "data", "simulated", "model.h5")
                  for d in (WORKFLOW_DIR,) if d is not None]
    candidates.append(str(default_motif_path().parent / "model.h5"))
    return next((c for c in candidates if os.path.exists(c)), candidates[0])


def job_resources(kind):
    """The `resources:` of one kind of job (config['resources'][kind]): mem_mb and runtime;
    on a cluster also its GPUs (none when config['cluster']['gpus'] is false: the one
    switch for CPU-only clusters) and the partition for jobs with or without GPUs
    (cluster.gpu_partition / cluster.cpu_partition; empty = the cluster's default).
    A dry run (`snakemake -n`) prints them for every job."""
    res = RES[kind]
    gpus = res.get("gpu", 0) if CLUSTER["gpus"] else 0
    partition = CLUSTER["gpu_partition"] if gpus else CLUSTER["cpu_partition"]
    return {"mem_mb": res["mem_mb"], "runtime": res["runtime"],
            **({"gpu": gpus} if gpus else {}),
            **({"slurm_partition": partition} if partition else {})}


def opt(flag, value):
    """' FLAG VALUE' (shell-quoted), or '' for an empty value / False; ' FLAG' for True."""
    if value is True:
        return f" {flag}"
    if value is False or value is None or value == "":
        return ""
    return f" {flag} {shlex.quote(str(value))}"


def score_options():
    """The `dnalift score` options shared by every scoring job (from config['score'])."""
    shuffle = SCORE["reference"] == "shuffle"  # k and seed are options of shuffles only
    return (opt("--mode", SCORE["mode"]) + opt("--reference", SCORE["reference"])
            + opt("--shuffles", SCORE["shuffles"] if shuffle else None)
            + opt("--seed", SCORE["seed"] if shuffle else None)
            + opt("--strands", SCORE["strands"] if SCORE["strands"] != "forward" else None)
            + opt("--batch-size", SCORE["batch_size"]) + opt("--device", SCORE["device"])
            + (f" {SCORE['extra']}" if SCORE["extra"] else ""))


# ---------------------------------------------------------------- simulated example

SIM_SPLITS = ("train", "valid", "test")

if SIM["enabled"] and not SIM["train"] and not SIM["model"] \
        and SIM["length"] != SHIPPED_MODEL_LENGTH:
    raise WorkflowError(
        f"config simulated.length = {SIM['length']}: the shipped model takes "
        f"{SHIPPED_MODEL_LENGTH} bp; set simulated.train: true or simulated.model")


def simulated_model():
    """The model that scores the simulated test set."""
    if SIM["train"]:
        return f"{RESULTS}/model/model.h5"
    return SIM["model"] or shipped_model()


def simulated_targets():
    return [f"{SIM_DIR}/scores.h5", f"{SIM_DIR}/scores.bw", f"{SIM_DIR}/motifs/hits.tsv",
            f"{SIM_DIR}/motifs/summary.tsv", f"{SIM_DIR}/figures/hits.png",
            f"{SIM_DIR}/figures/logo.png"]


# ---------------------------------------------------------------- genome-wide mode

#: `dnalift score --shard I/N` numbers shards from SHARD_BASE to SHARD_BASE + N - 1.
SHARD_BASE = 1
N_SHARDS = GEN["shards"]
SHARDS = list(range(SHARD_BASE, SHARD_BASE + N_SHARDS))
TILE = GEN["tile"]
DEMO = GEN["demo"]
DEMO_GENOME = f"{RESULTS}/demo_genome/genome.fa"

if GEN["enabled"] and not GEN["fasta"]:
    raise WorkflowError("config genome.enabled is true but genome.fasta is empty")


#: The genome and its index as rule inputs ([] while no genome is configured).
GENOME_FASTA = GEN["fasta"] or []
GENOME_FAI = f"{GEN['fasta']}.fai" if GEN["fasta"] else []


def genome_models():
    """The model files of the genome-wide mode: one, or the folds of an ensemble."""
    models = GEN["model"] if isinstance(GEN["model"], list) else [GEN["model"]]
    return [m for m in models if m] or [shipped_model()]


def model_options(models):
    """' --model A --model B ...' (shell-quoted)."""
    return "".join(opt("--model", m) for m in models)


def genome_regions():
    """The regions to score: a given BED, or the tiling of the genome."""
    return GEN["regions"] or f"{GEN_DIR}/regions.bed"


def shard_path(shard):
    return f"{GEN_DIR}/shards/shard{shard}-of-{N_SHARDS}.h5"


def genome_targets():
    return [f"{GEN_DIR}/scores.h5", f"{GEN_DIR}/scores.bw"]


# ---------------------------------------------------------------- motif discovery

DISC = config["discovery"]
DISC_DIR = f"{RESULTS}/discovery"


def shipped_data(name):
    """A file of the shipped example (data/simulated/NAME), found like the shipped model."""
    return os.path.join(os.path.dirname(shipped_model()), name)


def discovery_models():
    models = DISC["model"] if isinstance(DISC["model"], list) else [DISC["model"]]
    return [m for m in models if m] or [shipped_model()]


def discovery_fasta():
    return DISC["fasta"] or shipped_data("test.fa")


def discovery_meme():
    return DISC["motifs"] or shipped_data("motifs.meme")


def discovery_targets():
    outputs = ("modisco.h5", "report/report.html", "patterns.tsv", "hits.bed", "track.png")
    return [f"{DISC_DIR}/{task}/{name}" for task in DISC["tasks"] for name in outputs]


# ---------------------------------------------------------------- targets

def all_targets():
    """Final outputs of the enabled parts (rule all)."""
    targets = []
    if SIM["enabled"]:
        targets += simulated_targets()
    if GEN["enabled"]:
        targets += genome_targets()
    if DISC["enabled"]:
        targets += discovery_targets()
    return targets
