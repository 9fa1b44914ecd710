# Genome-wide mode: (demo genome) -> faidx -> tile (or a given BED) -> N x `dnalift score
# --shard I/N` -> merge into one HDF5 + one bigWig.
#
# Resume: each shard is its own job and its own file, named with N so that changing the
# shard count never reuses shards of another split. A finished shard is never recomputed;
# a job killed mid-way leaves no shard file (dnalift writes to a temporary name and renames
# at the end; Snakemake also deletes the outputs of failed jobs and, for jobs killed with
# the whole run, marks them incomplete so the next run redoes them: use
# --rerun-incomplete, which the SLURM profile sets).


rule demo_genome:
    """A small genome built from simulated sequences, N gaps between them (for trying the
    genome-wide mode without a real genome: genome.fasta = <results>/demo_genome/genome.fa)."""
    input:
        f"{SIM_DATA}/test.fa",
        f"{SIM_DATA}/valid.fa",
    output:
        DEMO_GENOME,
    params:
        chromosomes=DEMO["chromosomes"],
        per_chromosome=DEMO["sequences_per_chromosome"],
        gap=DEMO["gap"],
    log:
        f"{LOGS}/demo_genome.log",
    threads: 1
    resources:
        **job_resources("light"),
    script:
        "../scripts/demo_genome.py"


if GEN["fasta"]:

    rule faidx:
        """Index the genome once, before the parallel jobs that read it (an existing, newer
        .fai is used as is; the genome must be uncompressed FASTA)."""
        input:
            GEN["fasta"],
        output:
            f"{GEN['fasta']}.fai",
        log:
            f"{LOGS}/faidx.log",
        threads: 1
        resources:
            **job_resources("light"),
        shell:
            "python -c 'import sys, pyfaidx; pyfaidx.Faidx(sys.argv[1])' {input} > {log} 2>&1"


rule tile:
    """Fixed-width windows over the genome (BED), dropping N-rich windows."""
    input:
        fasta=GENOME_FASTA,
        fai=GENOME_FAI,
    output:
        f"{GEN_DIR}/regions.bed",
    params:
        options=opt("--width", TILE["width"]) + opt("--step", TILE["step"])
        + opt("--include", TILE["include"]) + opt("--exclude", TILE["exclude"])
        + opt("--max-n-fraction", TILE["max_n_fraction"]) + opt("--cover-end", TILE["cover_end"]),
    log:
        f"{LOGS}/tile.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "dnalift tile --genome {input.fasta}{params.options} --output {output} > {log} 2>&1"


rule score_shard:
    """Shard I of N of the regions: one job (and one log) per shard."""
    input:
        models=genome_models(),
        regions=genome_regions(),
        fasta=GENOME_FASTA,
        fai=GENOME_FAI,
    output:
        f"{GEN_DIR}/shards/shard{{shard}}-of-{N_SHARDS}.h5",
    wildcard_constraints:
        shard=r"\d+",
    params:
        n=N_SHARDS,
        models=model_options(genome_models()),
        options=score_options(),
    log:
        f"{LOGS}/score_shard/shard{{shard}}-of-{N_SHARDS}.log",
    threads: RES["score"]["threads"]
    resources:
        **job_resources("score"),
    shell:
        TF_THREADS + "dnalift score{params.models} --bed {input.regions}"
        " --genome {input.fasta} --shard {wildcards.shard}/{params.n}"
        " --output {output}{params.options} > {log} 2>&1"


rule merge_shards:
    """Merge the N shard HDF5 files into one HDF5 and one bigWig."""
    input:
        [shard_path(s) for s in SHARDS],
    output:
        h5=f"{GEN_DIR}/scores.h5",
        bigwig=f"{GEN_DIR}/scores.bw",
    log:
        f"{LOGS}/merge_shards.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "dnalift merge {input} --output {output.h5} --bigwig {output.bigwig} > {log} 2>&1"
