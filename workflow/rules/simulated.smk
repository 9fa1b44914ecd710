# The simulated GATA/TAL example: simulate -> (train) -> score -> motif summary + figures.

rule simulate:
    """Simulate 0-3 GATA/TAL instances per sequence (train/valid/test splits)."""
    output:
        expand(f"{SIM_DATA}/{{split}}{{ext}}", split=SIM_SPLITS,
               ext=(".fa", ".labels.tsv", ".embedded.tsv")),
        meme=f"{SIM_DATA}/motifs.meme",
        json=f"{SIM_DATA}/simulation.json",
    params:
        outdir=lambda wildcards, output: os.path.dirname(output.meme),
        n=SIM["n_sequences"],
        length=SIM["length"],
        seed=SIM["seed"],
    log:
        f"{LOGS}/simulate.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "dnalift simulate --output {params.outdir} --n-sequences {params.n}"
        " --length {params.length} --seed {params.seed} > {log} 2>&1"


rule train:
    """Train the example Conv1D model on the simulated data (simulated.train: true)."""
    input:
        expand(f"{SIM_DATA}/{{split}}{{ext}}", split=SIM_SPLITS, ext=(".fa", ".labels.tsv")),
    output:
        h5=f"{RESULTS}/model/model.h5",
        keras=f"{RESULTS}/model/model.keras",
        metrics=f"{RESULTS}/model/model.metrics.json",
    params:
        data=lambda wildcards, input: os.path.dirname(input[0]),
        outdir=lambda wildcards, output: os.path.dirname(output.h5),
        seed=SIM["seed"],
        epochs=SIM["epochs"],
    log:
        f"{LOGS}/train.log",
    threads: RES["train"]["threads"]
    resources:
        **job_resources("train"),
    shell:
        TF_THREADS + "dnalift train --data {params.data} --output {params.outdir}"
        " --seed {params.seed} --epochs {params.epochs} > {log} 2>&1"


rule score_simulated:
    """DeepLIFT scores of the simulated test split: HDF5 + bigWig."""
    input:
        model=simulated_model(),
        fasta=f"{SIM_DATA}/test.fa",
    output:
        h5=f"{SIM_DIR}/scores.h5",
        bigwig=f"{SIM_DIR}/scores.bw",
    params:
        options=score_options(),
    log:
        f"{LOGS}/score_simulated.log",
    threads: RES["score"]["threads"]
    resources:
        **job_resources("score"),
    shell:
        TF_THREADS + "dnalift score --model {input.model} --fasta {input.fasta}"
        " --output {output.h5} --bigwig {output.bigwig}{params.options} > {log} 2>&1"


rule motifs:
    """PWM hits with their contributions; embedded-vs-background summary; hit scatter."""
    input:
        h5=f"{SIM_DIR}/scores.h5",
        meme=f"{SIM_DATA}/motifs.meme",
        embedded=f"{SIM_DATA}/test.embedded.tsv",
    output:
        hits=f"{SIM_DIR}/motifs/hits.tsv",
        summary=f"{SIM_DIR}/motifs/summary.tsv",
        figure=f"{SIM_DIR}/figures/hits.png",
    params:
        options=opt("--pvalue", config["motifs"]["pvalue"])
        + (f" {config['motifs']['extra']}" if config["motifs"]["extra"] else ""),
    log:
        f"{LOGS}/motifs.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        "dnalift motifs --motifs {input.meme} --h5 {input.h5} --embedded {input.embedded}"
        " --output {output.hits} --summary {output.summary} --figure {output.figure}"
        "{params.options} > {log} 2>&1"


rule plot_logo:
    """Contribution logo of the first test sequence of class simulated.logo_class."""
    input:
        h5=f"{SIM_DIR}/scores.h5",
        labels=f"{SIM_DATA}/test.labels.tsv",
        embedded=f"{SIM_DATA}/test.embedded.tsv",
    output:
        f"{SIM_DIR}/figures/logo.png",
    params:
        cls=SIM["logo_class"],
    log:
        f"{LOGS}/plot_logo.log",
    threads: 1
    resources:
        **job_resources("light"),
    shell:
        # labels.tsv columns: name split class ...
        "name=$(awk -F'\\t' 'NR > 1 && $3 == \"{params.cls}\" {{print $1; exit}}' {input.labels});"
        " if [ -z \"$name\" ]; then echo 'no test sequence of class {params.cls}' > {log};"
        " exit 1; fi;"
        " dnalift plot --h5 {input.h5} --sequence \"$name\" --embedded {input.embedded}"
        " --output {output} > {log} 2>&1"
