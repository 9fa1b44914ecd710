#!/usr/bin/env bash
# Genome-wide dnalift scoring as a plain SLURM array job (no Snakemake).
#
# Submit (on the login node, with dnalift installed in the active environment):
#
#   scripts/slurm_array.sh submit N MODEL REGIONS.bed GENOME.fa OUTDIR [dnalift score options]
#
# This submits an array job of the shards that are not finished yet (tasks 1..N, one
# `dnalift score --shard I/N` each, I = $SLURM_ARRAY_TASK_ID, 1-based like dnalift) and a
# merge job that starts when every task has succeeded (--dependency=afterok):
#
#   OUTDIR/shards/shardI-of-N.h5  ->  dnalift merge ... --output OUTDIR/scores.h5
#                                                         --bigwig OUTDIR/scores.bw
#
# Resume: run the same submit command again. Finished shards are skipped (only the missing
# ones are submitted); dnalift writes every file under a temporary name and renames it
# when complete, so a killed task never leaves a file that looks finished.
#
# The #SBATCH lines below are the shard tasks' defaults (one GPU each); override them on
# the command line via SBATCH_* environment variables (e.g. SBATCH_PARTITION=gpu,
# SBATCH_ACCOUNT=lab) or edit them. Tasks log to OUTDIR/logs/shard-<array job>_<task>.log.
#
#SBATCH --job-name=dnalift-score
#SBATCH --gpus=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00

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
    missing=()
    for ((i = 1; i <= n; i++)); do
        [ -f "$(shard_path "$outdir" "$i" "$n")" ] || missing+=("$i")
    done
    dependency=()
    if [ ${#missing[@]} -gt 0 ]; then
        array=$(IFS=,; echo "${missing[*]}")
        jobid=$(sbatch --parsable --array="$array" \
            --output="$outdir/logs/shard-%A_%a.log" \
            "$0" shard "$n" "$model" "$regions" "$genome" "$outdir" "$@")
        jobid=${jobid%%;*}  # "id;cluster" on multi-cluster sites
        echo "submitted shard tasks $array of $n as array job $jobid"
        dependency=(--dependency="afterok:$jobid")
    else
        echo "all $n shards are finished"
    fi
    shards=()
    for ((i = 1; i <= n; i++)); do shards+=("$(shard_path "$outdir" "$i" "$n")"); done
    merge_cmd=$(printf '%q ' dnalift merge "${shards[@]}" \
        --output "$outdir/scores.h5" --bigwig "$outdir/scores.bw")
    mjob=$(sbatch --parsable "${dependency[@]}" --job-name=dnalift-merge \
        --cpus-per-task=1 --mem=16G --time=01:00:00 \
        --output="$outdir/logs/merge-%j.log" --wrap="$merge_cmd")
    echo "submitted merge job ${mjob%%;*}: $merge_cmd"
    ;;
shard)
    # run by SLURM for one array task
    [ $# -ge 5 ] || usage
    n=$1 model=$2 regions=$3 genome=$4 outdir=$5
    shift 5
    i=${SLURM_ARRAY_TASK_ID:?shard mode runs as a SLURM array task}
    exec dnalift score --model "$model" --bed "$regions" --genome "$genome" \
        --shard "$i/$n" --output "$(shard_path "$outdir" "$i" "$n")" "$@"
    ;;
*)
    usage
    ;;
esac
