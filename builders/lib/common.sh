# shellcheck shell=bash
# builders/lib/common.sh -- helpers shared by builders/bootstrap (sourced, not executed).
#
# Conventions: everything human-readable goes to stderr (stdout of bootstrap is reserved
# for the final config path); every long step logs to its own file under $LOG_DIR so that
# steps running in parallel do not interleave, and a failing step prints its log tail.

# Errors inside $(...) must fail too (bash >= 4.4).
shopt -s inherit_errexit

say() { printf '[bootstrap %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

# Docker's legacy builder: the engine is Debian's 20.10 and there is no buildx plugin, and
# the legacy builder is the one documented to use local base images without pulling.
export DOCKER_BUILDKIT=0

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

image_label() { # image label -> value ('' if absent)
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# An image is reused when it exists and was made from the current recipe (label
# org.wheelhouse.recipe == hash of the recipe files), unless --force was given.
image_is_current() { # image recipe-hash
    [ "$FORCE" = 1 ] && return 1
    image_exists "$1" && [ "$(image_label "$1" org.wheelhouse.recipe)" = "$2" ]
}

recipe_hash() { # files... -> short sha256 over their names and contents
    local f
    for f in "$@"; do printf '%s\n' "${f#"$BUILDERS_DIR"/}"; cat "$f"; done | sha256sum | cut -c1-16
}

# run_step NAME CMD... : run CMD with output in $LOG_DIR/NAME.log, time it, record the
# time in $TIMINGS, and on failure show the end of the log and fail.
run_step() {
    local name=$1; shift
    local log=$LOG_DIR/$name.log start end rc=0
    start=$(date +%s)
    say "$name: started (log: $log)"
    # Run as a background job and wait for it: a command (or shell function) run on the
    # left of `||` would have `set -e` silently disabled inside it.
    "$@" >"$log" 2>&1 &
    wait $! || rc=$?
    end=$(date +%s)
    printf '%-40s %4ds %s\n' "$name" "$((end - start))" "$([ $rc = 0 ] && echo ok || echo FAILED)" >>"$TIMINGS"
    if [ $rc != 0 ]; then
        tail -n 40 "$log" >&2
        die "$name failed (rc=$rc); full log: $log"
    fi
    say "$name: done in $((end - start))s"
}

# note_reused NAME : record that a step was skipped because its result already exists.
note_reused() {
    printf '%-40s %4ds reused\n' "$1" 0 >>"$TIMINGS"
    say "$1: reused"
}

# Parallel lanes: start_lane NAME FUNC... runs FUNC in a background subshell;
# wait_lane NAME waits for it and fails if it failed. A lane's own errors are already
# reported by run_step; this only propagates the status. The status goes through a file:
# with pid_max at 32768 and many processes, a long lane's pid can be reused by one of our
# later children, and bash then forgets the lane's saved exit status ("not a child").
declare -A LANE_PIDS=()
start_lane() {
    local name=$1; shift
    rm -f "$LOG_DIR/lane-$name.rc"
    ( set +e; ( "$@" ); echo $? >"$LOG_DIR/lane-$name.rc" ) &
    LANE_PIDS[$name]=$!
}
wait_lane() {
    local name=$1 rc
    wait "${LANE_PIDS[$name]}" 2>/dev/null || true
    unset "LANE_PIDS[$name]"
    rc=$(cat "$LOG_DIR/lane-$name.rc" 2>/dev/null || echo "no status")
    [ "$rc" = 0 ] || die "lane $name failed ($rc)"
}

# Map our arch names to Debian's.
debian_arch() {
    case $1 in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        *) die "unsupported arch $1" ;;
    esac
}

# Points inside a lane that others wait for: `mark NAME` in the lane when something is
# ready; `wait_mark LANE NAME` elsewhere blocks until it is, and fails if LANE ended
# (failed, or returned early) without marking it.
mark() { : >"$LOG_DIR/mark-$1"; }
wait_mark() {
    local lane=$1 name=$2
    until [ -e "$LOG_DIR/mark-$name" ]; do
        if [ -e "$LOG_DIR/lane-$lane.rc" ] && [ ! -e "$LOG_DIR/mark-$name" ]; then
            die "lane $lane ended ($(cat "$LOG_DIR/lane-$lane.rc")) before $name was ready"
        fi
        sleep 2
    done
}
