# Sourced by the study files (Revisit_Runs.sh, RealityCheck_Runs.sh, studies/glyphs.sh): runs the
# `python main.py ...` lines a study prints with its `study_lines` function.
#
#   bash STUDY.sh                      one run after another, output on the terminal
#   JOBS=N GPUS=0,1 bash STUDY.sh      N runs at a time (xargs -P); run i gets
#                                      CUDA_VISIBLE_DEVICES = GPUS[i mod len(GPUS)]; each run's
#                                      output goes to $LOG_DIR/<line number>_<group>_s<seed>.log
#   bash STUDY.sh --list               print the lines (Slurm: task i takes line i)
#
# Re-running a study resumes it: main.py reports a finished run and exits 0 without training, and a
# stopped run resumes from its last checkpoint. Environment: DATA (data root), SAVE (runs root),
# PROJECT, SEEDS (space-separated), ONLY (extended regex a line's --group must match), JOBS,
# GPUS (comma-separated, empty: leave CUDA_VISIBLE_DEVICES alone), LOG_ONLINE=1 (adds
# --log_online), PYTHON (interpreter), LOG_DIR, EXTRA (flags appended to every line).
set -euo pipefail

PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-"0 1 2 3 4"}
JOBS=${JOBS:-1}
GPUS=${GPUS:-}
ONLY=${ONLY:-.}
EXTRA=${EXTRA:-}
ONLINE=""
if [[ "${LOG_ONLINE:-0}" == 1 ]]; then ONLINE="--log_online"; fi

# Keep the lines whose --seed is in $SEEDS and whose --group matches $ONLY; append $EXTRA.
study_filter() {
    awk -v seeds=" $SEEDS " -v groups="$ONLY" -v extra="$EXTRA" '
        /^[[:space:]]*(#|$)/ { next }
        {
            seed = ""; group = ""
            for (i = 1; i < NF; i++) {
                if ($i == "--seed") seed = $(i + 1)
                if ($i == "--group") group = $(i + 1)
            }
            if (index(seeds, " " seed " ") == 0 || group !~ groups) next
            sub(/[[:space:]]+$/, "")
            print (extra == "" ? $0 : $0 " " extra)
        }'
}

# One line -> "<gpu-prefix>line" with the GPU chosen round-robin by line number.
study_assign_gpus() {
    if [[ -z "$GPUS" ]]; then cat; return; fi
    awk -v gpus="$GPUS" 'BEGIN { n = split(gpus, g, ",") }
                         { print "CUDA_VISIBLE_DEVICES=" g[(NR - 1) % n + 1] " " $0 }'
}

study_run_one() {  # $1: line number, $2: the command; used by xargs in parallel mode
    local n=$1 line=$2 name
    name=$(awk '{ for (i = 1; i < NF; i++) { if ($i == "--group") g = $(i+1);
                  if ($i == "--seed") s = $(i+1); if ($i == "--savename") v = $(i+1) } }
                END { print (v != "" ? v : g "_s" s) }' <<< "$line")
    local log="$LOG_DIR/$(printf '%04d' "$n")_${name}.log"
    if bash -c "$line" > "$log" 2>&1; then
        echo "ok      $name"
    else
        echo "FAILED  $name (rc $?, log: $log)"
        return 1
    fi
}
export -f study_run_one

study_main() {
    local lines
    lines=$(study_lines | study_filter)
    if [[ "${1:-}" == "--list" ]]; then
        printf '%s\n' "$lines"
        return 0
    elif [[ $# -gt 0 ]]; then
        echo "$0: error: unknown argument '$1' (allowed: --list; settings come from environment" \
             "variables, see the file's header)" >&2
        return 2
    fi
    local total failed=0
    total=$(printf '%s\n' "$lines" | grep -c . || true)
    echo "$0: $total runs, $JOBS at a time${GPUS:+ on GPUs $GPUS}"
    if [[ "$JOBS" -le 1 ]]; then
        local i=0
        while IFS= read -r line; do
            i=$((i + 1))
            echo "[$i/$total] $line"
            bash -c "$line" < /dev/null || { echo "FAILED (rc $?): $line"; failed=$((failed + 1)); }
        done < <(printf '%s\n' "$lines" | study_assign_gpus)
    else
        export LOG_DIR=${LOG_DIR:-${SAVE:-Training_Results}/logs}
        mkdir -p "$LOG_DIR"
        echo "$0: per-run output in $LOG_DIR"
        printf '%s\n' "$lines" | study_assign_gpus | awk '{ print NR "\t" $0 }' |
            xargs -d '\n' -P "$JOBS" -n 1 bash -c 'study_run_one "${1%%	*}" "${1#*	}"' _ \
            || failed=1
    fi
    if [[ $failed -ne 0 ]]; then
        echo "$0: some runs failed; fix them and run the study again" \
             "(finished runs are skipped)" >&2
        return 1
    fi
    echo "$0: all $total runs finished"
}
