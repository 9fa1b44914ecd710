#!/usr/bin/env bash
# Genome-wide dnalift scoring as a plain SLURM array job (no Snakemake).
#
# Submit (on the login node, with dnalift installed in the active environment):
#
#   scripts/slurm_array.sh submit N MODEL REGIONS.bed GENOME.fa OUTDIR [dnalift score options]
#
# This indexes the genome if it has no up-to-date .fai (once, here, not in every task), then
# submits an array job of the shards that are not finished yet (tasks 1..N, one
# `dnalift score --shard I/N` each, I = $SLURM_ARRAY_TASK_ID, 1-based like dnalift) and a
# merge job that starts when every task has succeeded (--dependency=afterok; if a task fails
# or is cancelled, SLURM removes the merge job: --kill-on-invalid-dep=yes):
#
#   OUTDIR/shards/shardI-of-N.h5  ->  dnalift merge ... --output OUTDIR/scores.h5
#                                                         --bigwig OUTDIR/scores.bw
#
# Resume: run the same submit command again. Finished shards are skipped (only the missing
# ones are submitted); dnalift writes every file under a temporary name and renames it
# when complete, so a killed task (scancel, time limit) never leaves a file that looks
# finished.
#
# What the shard tasks request (environment variables, defaults in brackets):
#   DNALIFT_GPUS       GPUs per task [1]; 0 on a CPU-only cluster (no --gpus at all)
#   DNALIFT_CPUS       CPUs per task [4]; TensorFlow's threads are capped to them
#   DNALIFT_MEM        memory per task [16G]
#   DNALIFT_TIME       time limit per task [04:00:00]
#   DNALIFT_PARTITION  partition of the tasks [the cluster's default]
# The merge job needs no GPU: 1 CPU, DNALIFT_MERGE_MEM [16G], DNALIFT_MERGE_TIME [01:00:00],
# DNALIFT_MERGE_PARTITION [the cluster's default]; SBATCH_PARTITION, SBATCH_GPUS and
# SBATCH_GRES are not passed on to it. Other SBATCH_* variables (e.g. SBATCH_ACCOUNT=lab)
# apply to both. Tasks log to OUTDIR/logs/shard-<array job>_<task>.log.
#
#SBATCH --job-name=dnalift-score

set -euo pipefail

usage() {
    echo "usage: $0 submit N MODEL REGIONS.bed GENOME.fa OUTDIR [dnalift score options]" >&2
    exit 2
}

shard_path() {  # OUTDIR I N
    echo "$1/shards/shard$2-of-$3.h5"
}

mode=${1:-}
[ $# -ge 1 ] && shift
case "$mode" in
submit)
    [ $# -ge 5 ] || usage
    n=$1 model=$2 regions=$3 genome=$4 outdir=$5
    shift 5
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "$0: N must be a positive integer: $n" >&2; exit 2; }
    for f in "$model" "$regions" "$genome"; do
        [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 2; }
    done
    mkdir -p "$outdir/shards" "$outdir/logs"
    if [ ! -s "$genome.fai" ] || [ "$genome.fai" -ot "$genome" ]; then
        echo "indexing $genome (once, before the array)"
        python3 -c 'import sys, pyfaidx; pyfaidx.Faidx(sys.argv[1])' "$genome" \
            || { echo "$0: cannot index $genome" >&2; exit 2; }
    fi
    resources=(--cpus-per-task="${DNALIFT_CPUS:-4}" --mem="${DNALIFT_MEM:-16G}"
               --time="${DNALIFT_TIME:-04:00:00}")
    gpus=${DNALIFT_GPUS:-1}
    [[ "$gpus" =~ ^[0-9]+$ ]] || { echo "$0: DNALIFT_GPUS must be 0 or more: $gpus" >&2; exit 2; }
    [ "$gpus" -gt 0 ] && resources+=(--gpus="$gpus")
    [ -n "${DNALIFT_PARTITION:-}" ] && resources+=(--partition="$DNALIFT_PARTITION")
    merge_resources=(--cpus-per-task=1 --mem="${DNALIFT_MERGE_MEM:-16G}"
                     --time="${DNALIFT_MERGE_TIME:-01:00:00}")
    [ -n "${DNALIFT_MERGE_PARTITION:-}" ] && merge_resources+=(--partition="$DNALIFT_MERGE_PARTITION")
    missing=()
    for ((i = 1; i <= n; i++)); do
        [ -f "$(shard_path "$outdir" "$i" "$n")" ] || missing+=("$i")
    done
    dependency=()
    if [ ${#missing[@]} -gt 0 ]; then
        array=$(IFS=,; echo "${missing[*]}")
        jobid=$(sbatch --parsable --array="$array" "${resources[@]}" \
            --output="$outdir/logs/shard-%A_%a.log" \
            "$0" shard "$n" "$model" "$regions" "$genome" "$outdir" "$@")
        jobid=${jobid%%;*}  # "id;cluster" on multi-cluster sites
        echo "submitted shard tasks $array of $n as array job $jobid"
        dependency=(--dependency="afterok:$jobid" --kill-on-invalid-dep=yes)
    else
        echo "all $n shards are finished"
    fi
    shards=()
    for ((i = 1; i <= n; i++)); do shards+=("$(shard_path "$outdir" "$i" "$n")"); done
    merge_cmd=$(printf '%q ' dnalift merge "${shards[@]}" \
        --output "$outdir/scores.h5" --bigwig "$outdir/scores.bw")
    mjob=$(env -u SBATCH_PARTITION -u SBATCH_GPUS -u SBATCH_GRES \
        sbatch --parsable "${dependency[@]}" --job-name=dnalift-merge "${merge_resources[@]}" \
        --output="$outdir/logs/merge-%j.log" --wrap="$merge_cmd")
    echo "submitted merge job ${mjob%%;*}: $merge_cmd"
    ;;
shard)
    # run by SLURM for one array task
    [ $# -ge 5 ] || usage
    n=$1 model=$2 regions=$3 genome=$4 outdir=$5
    shift 5
    i=${SLURM_ARRAY_TASK_ID:?shard mode runs as a SLURM array task}
    threads=${SLURM_CPUS_PER_TASK:-1}  # TensorFlow would otherwise use every core of the node
    export TF_NUM_INTRAOP_THREADS=$threads TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=$threads
    exec dnalift score --model "$model" --bed "$regions" --genome "$genome" \
        --shard "$i/$n" --output "$(shard_path "$outdir" "$i" "$n")" "$@"
    ;;
*)
    usage
    ;;
esac
