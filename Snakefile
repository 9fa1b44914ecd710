# dnalift Snakemake workflow.
#
#   snakemake --cores 2                                        # simulated example, end to end
#   snakemake -n -p --configfile config/genome_example.yaml    # genome-wide plan (dry run)
#   snakemake --profile profiles/slurm --configfile my.yaml    # on a SLURM cluster
#
# Config keys: config/config.yaml (documented) and workflow/schemas/config.schema.yaml
# (types and defaults). See the README section "Snakemake workflow and HPC batch runs".

import os


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/simulated.smk"
include: "workflow/rules/genome.smk"
include: "workflow/rules/discovery.smk"


rule all:
    default_target: True
    input:
        all_targets(),
