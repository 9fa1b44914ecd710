# From scores to named motifs (discovery.enabled): score the discovery sequences ->
# per task: TF-MoDISco patterns + HTML report -> patterns named against the MEME database
# (table + logos) -> Fi-NeMo hits as BED -> a track plot of the first region with a hit.
# Needs the optional tools: pip install 'dnalift[motifs]' (modisco-lite, finemo, memelite).


rule score_discovery:
    """DeepLIFT scores of the discovery sequences (all tasks): HDF5 in TF-MoDISco layout."""
    input:
        models=discovery_models(),
        fasta=discovery_fasta(),
    output:
        f"{DISC_DIR}/scores.h5",
    params:
        models=lambda wildcards, input: model_options(input.models),
        options=score_options(),
    log:
        f"{LOGS}/discovery/score.log",
    threads: RES["score"]["threads"]
    resources:
        **job_resources("score"),
    shell:
        TF_THREADS + "dnalift score{params.models} --fasta {input.fasta}"
        " --output {output}{params.options} > {log} 2>&1"


rule modisco:
    """TF-MoDISco (`modisco motifs`) on one task's hypothetical contributions."""
    input:
        f"{DISC_DIR}/scores.h5",
    output:
        f"{DISC_DIR}/{{task}}/modisco.h5",
    params:
        max_seqlets=DISC["max_seqlets"],
    log:
        f"{LOGS}/discovery/{{task}}/modisco.log",
    threads: RES["discovery"]["threads"]
    resources:
        **job_resources("discovery"),
    shell:
        "export NUMBA_NUM_THREADS={threads}; dnalift discover modisco --h5 {input}"
        " --task {wildcards.task} --max-seqlets {params.max_seqlets} --output {output}"
        " --log {log} >> {log} 2>&1"


rule modisco_report:
    """TF-MoDISco's HTML report with TOMTOM matches (memelite) against the MEME file."""
    input:
        modisco=f"{DISC_DIR}/{{task}}/modisco.h5",
        meme=discovery_meme(),
    output:
        f"{DISC_DIR}/{{task}}/report/report.html",
    params:
        outdir=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/discovery/{{task}}/report.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "dnalift discover report --modisco {input.modisco} --motifs {input.meme}"
        " --output {params.outdir} --log {log} >> {log} 2>&1"


rule name_patterns:
    """The pattern table: best database match of every pattern, p- and q-value; logos."""
    input:
        modisco=f"{DISC_DIR}/{{task}}/modisco.h5",
        meme=discovery_meme(),
    output:
        table=f"{DISC_DIR}/{{task}}/patterns.tsv",
        pairs=f"{DISC_DIR}/{{task}}/pattern_matches.tsv",
        logos=directory(f"{DISC_DIR}/{{task}}/logos"),
    params:
        method=DISC["method"],
    log:
        f"{LOGS}/discovery/{{task}}/name_patterns.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "dnalift discover name --modisco {input.modisco} --motifs {input.meme}"
        " --output {output.table} --pairs {output.pairs} --logos {output.logos}"
        " --method {params.method} > {log} 2>&1"


rule call_hits:
    """Fi-NeMo hits of the task's patterns in the scored regions, BED in genome coordinates
    (named by the best database match)."""
    input:
        h5=f"{DISC_DIR}/scores.h5",
        modisco=f"{DISC_DIR}/{{task}}/modisco.h5",
        patterns=f"{DISC_DIR}/{{task}}/patterns.tsv",
    output:
        f"{DISC_DIR}/{{task}}/hits.bed",
    params:
        options=opt("--max-regions", DISC["hit_regions"]) + opt("--lambda", DISC["hit_lambda"]),
    log:
        f"{LOGS}/discovery/{{task}}/call_hits.log",
    threads: RES["discovery"]["threads"]
    resources:
        **job_resources("discovery"),
    shell:
        "export OMP_NUM_THREADS={threads}; dnalift discover hits --h5 {input.h5}"
        " --task {wildcards.task} --modisco {input.modisco} --patterns {input.patterns}"
        " --output {output}{params.options} --log {log} >> {log} 2>&1"


rule track_plot:
    """Contribution logo of the first region with a hit, its hits marked."""
    input:
        h5=f"{DISC_DIR}/scores.h5",
        hits=f"{DISC_DIR}/{{task}}/hits.bed",
    output:
        f"{DISC_DIR}/{{task}}/track.png",
    log:
        f"{LOGS}/discovery/{{task}}/track_plot.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "region=$(head -n 1 {input.hits} | cut -f 7);"
        " if [ -z \"$region\" ]; then echo 'no hits in {input.hits}' > {log}; exit 1; fi;"
        " dnalift discover track --h5 {input.h5} --task {wildcards.task} --hits {input.hits}"
        " --region \"$region\" --output {output} > {log} 2>&1"
