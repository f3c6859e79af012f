#!/bin/bash -p
# concurrency-observer's dependency-free extension: bash and its /dev/tcp, nothing else (no curl,
# no python). The launcher runs it where no python3 >= 3.10 exists (Node.js, Java, .NET, Ruby,
# provided.al2023, python3.8/3.9) and where it is the cheaper of the two (SHUTDOWN only + emf).
#
# It registers for SHUTDOWN only, writes the init record as one EMF line on stdout before its first
# /event/next, and at SHUTDOWN (or SIGTERM, whichever comes first, once) the shutdown record, then
# exits 0. It never exits before that: Lambda treats an extension that exits early as
# Extension.Crash and fails every invoke. The metric names, units, dimension sets and namespace are
# those of src/concurrency_observer/schema.py; docs/runtimes.md says what is and is not recorded.
#
# SnapStart (Java and .NET run this fallback): Lambda runs init once, snapshots the environment
# while this script waits on /event/next, and resumes every restored environment there, with no
# event to say so. The wall clock then jumps against the uptime clock, which the snapshot froze;
# on that jump this writes an init record for the restored environment, timestamped at the restore,
# and measures the lifetime from it (docs/runtimes.md).
#
# CONCURRENCY_OBSERVER_METRICS picks the metric lines, as in the Python extension: lean (the
# default) writes EnvironmentDelta +1 at init and -1 at shutdown under [FunctionName, InitType];
# full writes the six metrics. Either way, at shutdown, one environment record line (the fields
# BASH_FIELDS of src/concurrency_observer/environment_record.py, engine "bash") goes to stdout.
#
# Runs on bash 4.2 (Amazon Linux 2) and 5.x (Amazon Linux 2023): $EPOCHREALTIME only when set.
# $1: the name to register under (the launcher's file name): Lambda knows an external extension,
# the kind that gets SHUTDOWN, by the name of its executable in /opt/extensions.
# Sourced (tests), it only defines its functions; main runs it.
#
# The environment is the function's, and a user's: nothing in it may program this shell, and no
# value in it is ever evaluated, only copied as data (docs/runtimes.md, "A hostile environment").
# -p (privileged mode: the #! line, and `bash -p` from the launcher) keeps bash from reading
# $BASH_ENV and $ENV, from parsing $SHELLOPTS and $BASHOPTS and from importing functions
# (BASH_FUNC_*%%), on bash 4.2 as on 5.x. It leaves the rest, undone here before anything runs:
# POSIXLY_CORRECT (POSIX mode, where a failed redirection of exec ends the shell), FUNCNEST (a
# function depth limit), TMOUT (a default timeout for read), BASH_COMPAT, EXECIGNORE, CDPATH,
# GLOBIGNORE; IFS is reset by bash itself, and again here. Every value is cut at MAX_TEXT characters
# (capped) before any work on it, and every helper makes a few passes over it: linear time, bounded.
unset -v POSIXLY_CORRECT POSIX_PEDANTIC FUNCNEST TMOUT BASH_COMPAT EXECIGNORE CDPATH GLOBIGNORE
set +o posix
IFS=$' \t\n'
shopt -u expand_aliases
unalias -a

# Bytes, not characters: ranges, ${v,,} and read -N then behave the same in every locale.
export LC_ALL=C
shopt -s extglob

readonly LOG_PREFIX='[concurrency-observer]'
readonly API_PATH=/2020-01-01/extension
readonly DEFAULT_NAMESPACE=ConcurrencyObserver
readonly TOKEN_MAX=32
# A value from the environment or the Extensions API is cut to this many characters (capped)
# before anything else is done with it (environment_record.MAX_TEXT_LENGTH: longer is no Lambda
# name or token).
readonly MAX_TEXT=256
readonly MAX_LOG_LINE=1000 # characters of a log line's message, as extension/log.py
readonly RESTORE_JUMP_MS=2000 # wall clock ahead of uptime by more than this: a restored snapshot
readonly RECORD_VERSION=environment/1
readonly BASE_SETS='["FunctionName"],["FunctionName","FunctionVersion"],["FunctionName","InitType"]'

external() {
    # Sets $found: /bin/$1 or /usr/bin/$1, where every Lambda image has it, else $1 from PATH (a
    # PATH without /bin is the user's to set, and must not leave the backoff without a sleep).
    local dir
    found=$1
    for dir in /bin /usr/bin; do
        if [[ -x $dir/$1 ]]; then
            found=$dir/$1
            return
        fi
    done
}
external sleep
sleep_command=$found
external date
date_command=$found

now_ms() {
    # Sets $now: epoch milliseconds (wall clock). bash 5 has $EPOCHREALTIME (its decimal point
    # follows the locale, hence the pattern); bash 4.2 forks date (at init and at shutdown only);
    # printf's %(%s)T, the last resort, is whole seconds.
    # On bash 4.2 $EPOCHREALTIME is an ordinary variable the environment may set to anything: only
    # digits reach arithmetic (where text such as a[$(cmd)] would run cmd).
    local stamp
    if [[ ${#EPOCHREALTIME} -lt 30 && ${EPOCHREALTIME:-} == [0-9]*([0-9])[.,][0-9][0-9][0-9]*([0-9]) ]]; then
        stamp=${EPOCHREALTIME/[.,]/}
        now=$((10#${stamp:0:${#stamp}-3}))
    elif stamp=$("$date_command" +%s%3N 2>/dev/null) && [[ $stamp == +([0-9]) && ${#stamp} -lt 19 ]]; then
        now=$((10#$stamp))
    else
        printf -v stamp '%(%s)T' -1
        now=$((stamp * 1000))
    fi
}

uptime_ms() {
    # Sets $uptime: milliseconds since boot from /proc/uptime (a clock the snapshot stops), or ''.
    local up=''
    uptime=''
    { read -r up _ </proc/uptime; } 2>/dev/null
    if [[ $up == +([0-9]).[0-9][0-9] ]]; then
        uptime=$((10#${up%.*} * 1000 + 10#${up#*.} * 10))
    fi
}

log_line() {
    # log_line LEVEL MESSAGE...: one line on stderr (the function's log stream), unless
    # CONCURRENCY_OBSERVER_LOG_LEVEL is above LEVEL (ERROR > WARNING > INFO, as extension/log.py).
    # A line break in a value (a function name) is written as \n: a value cannot start a line of
    # its own, such as a forged EMF document.
    case "$1/${log_level:-INFO}" in
        INFO/ERROR | INFO/WARNING | WARNING/ERROR) return 0 ;;
    esac
    local message=${*:2}
    message=${message:0:MAX_LOG_LINE}
    message=${message//$'\n'/\\n}
    message=${message//$'\r'/\\r}
    printf '%s %s %s\n' "$LOG_PREFIX" "$1" "$message" >&2 || :
}

capped() {
    # Sets $text: $1 cut to its first MAX_TEXT characters, the rule environment_record.cut_text
    # states for the Python engine: a well-formed UTF-8 sequence is one character, any other byte
    # is one character by itself (as Python decodes the environment, surrogateescape), and a
    # sequence is never split. A value of at most MAX_TEXT bytes, or whose first MAX_TEXT bytes
    # are ASCII, is cut without a loop; else one step per character, at most MAX_TEXT steps.
    text=${1:0:MAX_TEXT}
    # shellcheck disable=SC2053 # the patterns are byte classes, unquoted on purpose
    if [[ ${#1} -le MAX_TEXT || $text != *[$'\x80'-$'\xff']* ]]; then
        return
    fi
    local tail=$'[\x80-\xbf]' chunk
    local two=$'[\xc2-\xdf]'$tail
    local three=$'@(\xe0[\xa0-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]|\xed[\x80-\x9f])'$tail
    local four=$'@(\xf0[\x90-\xbf]|[\xf1-\xf3][\x80-\xbf]|\xf4[\x80-\x8f])'$tail$tail
    # A character is at most 4 bytes: the loop reads the first 4 * MAX_TEXT only.
    local head=${1:0:4*MAX_TEXT}
    local -i at=0 count=0 length=${#head}
    while ((count < MAX_TEXT && at < length)); do
        chunk=${head:at:4}
        count+=1
        # shellcheck disable=SC2053
        if [[ $chunk == [$'\x01'-$'\x7f']* ]]; then
            at+=1
        elif [[ $chunk == $two* ]]; then
            at+=2
        elif [[ $chunk == $three* ]]; then
            at+=3
        elif [[ $chunk == $four* ]]; then
            at+=4
        else
            at+=1 # a byte of no well-formed sequence: a character by itself
        fi
    done
    text=${head:0:at}
}

trimmed() {
    # Sets $trim: $1 (capped) without leading and trailing whitespace (str.strip(): ASCII and
    # \x1c-\x1f). Each removal takes the run of whitespace found by one scan, as a literal.
    local ws=$' \t\n\v\f\r\x1c\x1d\x1e\x1f' text
    capped "$1"
    text=${text#"${text%%[!"$ws"]*}"}
    trim=${text%"${text##*[!"$ws"]}"}
}

safe_token() {
    # Sets $token like schema.safe_token: lower-case, runs of anything but [a-z0-9_.-] become
    # one "-", no "-" at either end, at most 32 characters, "unknown" when nothing is left. Each
    # unsafe byte becomes \x01 (itself unsafe) in one pass, runs of it are halved until single.
    local text raw mark=$'\x01'
    capped "$1"
    raw=${text,,}
    raw=${raw//[^a-z0-9_.-]/$mark}
    while [[ $raw == *"$mark$mark"* ]]; do raw=${raw//"$mark$mark"/$mark}; done
    raw=${raw//"$mark"/-}
    raw=${raw#"${raw%%[!-]*}"}
    raw=${raw%"${raw##*[!-]}"}
    token=${raw:0:TOKEN_MAX}
    token=${token:-unknown}
}

json_string() {
    # Sets $json: $1 (capped) as a JSON string: backslashes and quotes escaped, and each control
    # character present as \u00XX, one replacement pass per character (at most 32).
    local text code hex char escaped
    capped "$1"
    text=${text//\\/\\\\}
    text=${text//\"/\\\"}
    if [[ $text == *[[:cntrl:]]* ]]; then
        for code in {1..31} 127; do
            printf -v hex '%02x' "$code"
            printf -v char '%b' "\\x$hex"
            [[ $text == *"$char"* ]] || continue
            printf -v escaped '\\u%04x' "$code"
            text=${text//"$char"/$escaped}
        done
    fi
    json="\"$text\""
}

valid_namespace() {
    # CloudWatch's rule, as extension/config.py applies it: 1-255 of 0-9A-Za-z.-_/#: and space,
    # not starting with AWS/.
    [[ -n $1 && ${#1} -le 255 && $1 != *[^0-9A-Za-z./#:\ _-]* && $1 != AWS/* ]]
}

seconds() {
    # Sets $secs: $1 milliseconds as seconds with 3 decimals (never negative: a clock step back).
    local ms=$(($1 < 0 ? 0 : $1))
    printf -v secs '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

configure() {
    # Reads the environment once, like extension/config.py; sets the record's constant parts,
    # $log_level and $warning (empty, or one sentence for the init log line). The sink is always
    # emf and the events SHUTDOWN, whatever CONCURRENCY_OBSERVER_SINK and _EVENTS say.
    warning=''
    trimmed "${CONCURRENCY_OBSERVER_LOG_LEVEL:-}"
    log_level=${trim^^}
    trimmed "${CONCURRENCY_OBSERVER_NAMESPACE:-}"
    namespace=${trim:-$DEFAULT_NAMESPACE}
    if ! valid_namespace "$namespace"; then
        warning="CONCURRENCY_OBSERVER_NAMESPACE is not a valid CloudWatch namespace"
        warning+=", using $DEFAULT_NAMESPACE; "
        namespace=$DEFAULT_NAMESPACE
    fi
    trimmed "${AWS_LAMBDA_FUNCTION_NAME:-}"
    function_name=${trim:-unknown}
    json_string "$function_name"
    local function_json=$json
    trimmed "${AWS_LAMBDA_FUNCTION_VERSION:-}"
    json_string "${trim:-\$LATEST}"
    local version_json=$json
    trimmed "${AWS_LAMBDA_INITIALIZATION_TYPE:-}"
    init_type=on-demand
    if [[ -n $trim ]]; then
        safe_token "$trim"
        init_type=$token
    fi
    configure_profile
    # The record carries the same JSON strings (json_string caps them at MAX_TEXT characters).
    record_function_json=$function_json
    record_version_json=$version_json
    base_values="\"FunctionName\":$function_json,\"FunctionVersion\":$version_json,\"InitType\":\"$init_type\""
    lean_values="\"FunctionName\":$function_json,\"InitType\":\"$init_type\""
}

configure_profile() {
    # Sets $metrics: CONCURRENCY_OBSERVER_METRICS, lean (default) or full, as extension/config.py
    # reads it; anything else adds a sentence to $warning and uses lean.
    trimmed "${CONCURRENCY_OBSERVER_METRICS:-}"
    metrics=${trim,,}
    case $metrics in
        lean | full) ;;
        '') metrics=lean ;;
        *)
            warning+="CONCURRENCY_OBSERVER_METRICS is not one of lean, full; using lean; "
            metrics=lean
            ;;
    esac
}

new_environment_id() {
    # Sets $environment_id: 16 random hex digits, drawn at the start of the environment's life
    # (and at each SnapStart restore). The kernel's uuid through read (no fork), else bash 5.1's
    # $SRANDOM; a v4 uuid's version and variant digits are skipped, they are not random.
    local uuid='' hex
    { read -r uuid </proc/sys/kernel/random/uuid; } 2>/dev/null
    hex=${uuid//-/}
    if [[ $hex == +([0-9a-f]) && ${#hex} == 32 ]]; then
        environment_id=${hex:0:12}${hex:13:3}${hex:17:1}
    elif ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)); then
        printf -v environment_id '%08x%08x' "$SRANDOM" "$SRANDOM"
    else # neither: the clock, the pid and $RANDOM, unique enough to tell environments apart
        printf -v environment_id '%011x%05x' $((now & 0xfffffffffff)) $(((RANDOM << 5 ^ $$) & 0xfffff))
    fi
}

emit_delta() {
    # emit_delta TIMESTAMP DELTA: the lean profile's EnvironmentDelta line.
    emit "{\"_aws\":{\"Timestamp\":$1,\"CloudWatchMetrics\":[{\"Namespace\":\"$namespace\",\"Dimensions\":[[\"FunctionName\",\"InitType\"]],\"Metrics\":[{\"Name\":\"EnvironmentDelta\",\"Unit\":\"Count\"}]}]},$lean_values,\"EnvironmentDelta\":$2}"
}

emit_environment_record() {
    # emit_environment_record SHUTDOWN_MS REASON_TOKEN: the environment record, one line. Under
    # SHUTDOWN only, the idle time runs from init, so it is the lifetime.
    local lifetime=$(($1 - started_ms))
    ((lifetime < 0)) && lifetime=0
    emit "{\"concurrencyObserver\":\"$RECORD_VERSION\",\"functionName\":$record_function_json,\"functionVersion\":$record_version_json,\"initType\":\"$init_type\",\"environmentId\":\"$environment_id\",\"engine\":\"bash\",\"metrics\":\"$metrics\",\"initTime\":$started_ms,\"shutdownTime\":$1,\"shutdownReason\":\"$2\",\"lifetimeMs\":$lifetime,\"idleMs\":$lifetime}"
}

emit() {
    # One EMF document on one line, in one write.
    printf '%s\n' "$1" || :
}

init_written=''
emit_init() {
    init_written=1
    if [[ $metrics == lean ]]; then
        emit_delta "$started_ms" 1
        return
    fi
    emit "{\"_aws\":{\"Timestamp\":$started_ms,\"CloudWatchMetrics\":[{\"Namespace\":\"$namespace\",\"Dimensions\":[$BASE_SETS],\"Metrics\":[{\"Name\":\"EnvironmentInit\",\"Unit\":\"Count\"}]}]},$base_values,\"EnvironmentInit\":1}"
}

shutdown_written=''
finish() {
    # Writes the shutdown record once and exits 0; $1 is the reason as Lambda sent it.
    [[ -n $shutdown_written ]] && exit 0
    shutdown_written=1
    trap '' TERM
    local now token secs lifetime
    # SIGTERM before the init record went out: write it too, so every shutdown has its init.
    [[ -n $init_written ]] || emit_init
    now_ms
    safe_token "$1"
    seconds $((now - started_ms))
    lifetime=$secs
    emit_environment_record "$now" "$token"
    if [[ $metrics == lean ]]; then
        emit_delta "$now" -1
    else
        emit "{\"_aws\":{\"Timestamp\":$now,\"CloudWatchMetrics\":[{\"Namespace\":\"$namespace\",\"Dimensions\":[$BASE_SETS,[\"FunctionName\",\"ShutdownReason\"]],\"Metrics\":[{\"Name\":\"EnvironmentShutdown\",\"Unit\":\"Count\"}]},{\"Namespace\":\"$namespace\",\"Dimensions\":[$BASE_SETS],\"Metrics\":[{\"Name\":\"EnvironmentLifetime\",\"Unit\":\"Seconds\"},{\"Name\":\"EnvironmentIdleTime\",\"Unit\":\"Seconds\"}]}]},$base_values,\"ShutdownReason\":\"$token\",\"EnvironmentShutdown\":1,\"EnvironmentLifetime\":$lifetime,\"EnvironmentIdleTime\":$lifetime}"
    fi
    local summary="shutdown ($token) after $lifetime s"
    ((restores > 0)) && summary+=" (restored from a snapshot)"
    log_line INFO "$summary, bash fallback (SHUTDOWN only, emf): delivered init+shutdown"
    exit 0
}

request() {
    # request METHOD PATH BODY [HEADER...]: one HTTP/1.1 exchange with the Extensions API on a
    # fresh connection. Sets $status (000 when no answer), $extension_id (if the answer names
    # one) and $body; fails when nothing came back.
    local method=$1 path=$2 data=$3 line header length=''
    shift 3
    status=000
    body=''
    { exec 3<>"/dev/tcp/$api_host/$api_port"; } 2>/dev/null || return 1
    {
        printf '%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n' \
            "$method" "$path" "$api" "${#data}"
        for header in "$@"; do printf '%s\r\n' "$header"; done
        printf '\r\n%s' "$data"
    } >&3 2>/dev/null || {
        exec 3<&-
        return 1
    }
    if ! IFS=' ' read -r _ status _ <&3; then
        exec 3<&-
        status=000
        return 1
    fi
    status=${status%$'\r'}
    while IFS= read -r line <&3; do
        line=${line%$'\r'}
        [[ -z $line ]] && break
        case ${line,,} in
            lambda-extension-identifier:*) trimmed "${line#*:}" && extension_id=$trim ;;
            content-length:*) trimmed "${line#*:}" && length=$trim ;;
        esac
    done
    if [[ $length == +([0-9]) ]]; then
        IFS= read -r -N "$length" body <&3
    else
        IFS= read -r -d '' body <&3
    fi
    exec 3<&-
    [[ $status == +([0-9]) ]] || status=000
}

backoff=0
next_backoff() {
    # Sleeps 0.05 s, doubled per consecutive failure up to 5 s: no busy loop, and no giving up.
    local delays=(0.05 0.1 0.2 0.4 0.8 1.6 3.2 5)
    "$sleep_command" "${delays[backoff]}" 2>/dev/null || "$sleep_command" 1 2>/dev/null || :
    if ((backoff < ${#delays[@]} - 1)); then backoff=$((backoff + 1)); fi
}

register() {
    # Until registered there is no identifier to poll with: keep trying (init waits for it, and a
    # process that exits now fails the environment). One log line, at the first failure.
    extension_id=''
    until request POST "$API_PATH/register" '{"events":["SHUTDOWN"]}' \
        "Lambda-Extension-Name: $extension_name" 'Content-Type: application/json' &&
        [[ $status == 200 && -n $extension_id ]]; do
        if ((backoff == 0)); then
            log_line ERROR "cannot register with the Extensions API at '$api' (HTTP $status)," \
                "retrying"
        fi
        next_backoff
    done
    backoff=0
}

clock_offset() {
    # Sets $offset: wall clock minus uptime (ms), '' when the uptime is unknown; and $uptime.
    now_ms
    uptime_ms
    offset=${uptime:+$((now - uptime))}
}

check_restore() {
    # After a wait on /event/next of a snap-start environment: if the wall clock jumped against
    # the uptime since $1 (the uptime when the wait began), this is a restored copy of the
    # snapshot: its life starts at the restore, which is the uptime elapsed since $1 ago.
    local before=$1 now uptime offset
    [[ $init_type == snap-start && -n $before && -n $init_offset ]] || return 0
    clock_offset
    [[ -n $offset ]] && ((offset - init_offset > RESTORE_JUMP_MS)) || return 0
    started_ms=$((now - (uptime - before)))
    init_offset=$offset
    restores=$((restores + 1))
    new_environment_id
    emit_init
}

serve_events() {
    # /event/next until SHUTDOWN; a failed call backs off and tries again, an unknown event is
    # skipped.
    local reason waiting_since uptime
    while :; do
        uptime_ms
        waiting_since=$uptime
        if request GET "$API_PATH/event/next" '' "Lambda-Extension-Identifier: $extension_id" &&
            [[ $status == 200 ]]; then
            backoff=0
            check_restore "$waiting_since"
            if [[ $body =~ \"eventType\"[[:space:]]*:[[:space:]]*\"SHUTDOWN\" ]]; then
                reason=''
                if [[ $body =~ \"shutdownReason\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]]; then
                    reason=${BASH_REMATCH[1]}
                fi
                finish "$reason"
            fi
        else
            next_backoff
        fi
    done
}

main() {
    # $1: the name to register under.
    local now offset uptime
    clock_offset
    started_ms=$now
    init_offset=$offset
    restores=0
    new_environment_id
    # A closed stdout must give a failed write, not a death by SIGPIPE.
    trap '' PIPE
    configure
    trap 'finish sigterm' TERM
    # host:port, set by Lambda; anything else could only make the requests say something else.
    capped "${AWS_LAMBDA_RUNTIME_API:-}"
    api=$text
    [[ $api == *[!A-Za-z0-9.:_-]* ]] && api=''
    api_host=${api%:*}
    api_port=${api##*:}
    extension_name=${1:-${0##*/}}
    register
    emit_init
    log_line INFO "${warning}$init_type environment of $function_name," \
        "bash fallback (SHUTDOWN only, emf): init record delivered"
    serve_events
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
