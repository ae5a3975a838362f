# Sourced by the scripts in scripts/ (needs REPO set): log_setup NAME DEFAULT_DIR sends
# everything printed to $OUT/NAME-<time>.txt (else ./DEFAULT_DIR/) as well as the terminal and
# runs from the repository with it on PYTHONPATH; section prints a timed header; commit_id
# names the checked-out commit.

log_setup() {
    RESULTS="${OUT:-$PWD/$2}"
    mkdir -p "$RESULTS"
    STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
    LOG="$RESULTS/$1-$STAMP.txt"
    exec > >(tee -a "$LOG") 2>&1
    START=$SECONDS
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONDONTWRITEBYTECODE=1
    cd "$REPO"
}

section() { printf '\n===== %s (t=%ss) =====\n' "$1" "$((SECONDS - START))"; }

commit_id() {
    echo "$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (+ local changes)')"
}
