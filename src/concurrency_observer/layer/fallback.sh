#!/bin/bash -p
# concurrency-observer's shell front door and shell engine: bash and its /dev/tcp, nothing else
# (no curl, no python). The launcher runs it wherever bash exists (docs/runtimes.md, "Which
# program runs").
#
# The front door registers with the Extensions API first (Lambda starts the runtime only once
# every extension has registered: what comes before Register is paid in full, what comes after
# runs beside the runtime's init), before bash has even read the engine (front_door, below). It
# registers for INVOKE and SHUTDOWN, or SHUTDOWN alone when CONCURRENCY_OBSERVER_EVENTS says so
# or on Lambda Managed Instances, and again for SHUTDOWN alone when Lambda refuses INVOKE (403
# Extension.InvalidEventType). Then, unless the shell engine is chosen, it starts the Python
# engine (Lambda's python3 at once, before bash reads the rest: launch_early, below; a python3
# from PATH from main, once probed) as its child (coproc) with the identifier, the events and
# the Register response on the command line (--handoff, see extension/handoff.py), and reads its
# milestones on a pipe: "init" (the init record is Python's), "loop" (Python owns the event loop).
# Once Python owns the loop this shell only waits for it (and passes SIGTERM on). If Python cannot
# start, is too old, fails, hangs or is killed before "loop", this shell serves the events itself
# with the same identifier, as the shell engine: exactly one process owns the loop, and the
# records are written once. The process Lambda started stays alive until SHUTDOWN either way.
#
# The shell engine writes the init record as one EMF line on stdout before its first
# /event/next, counts INVOKE events (invocations, time to first invoke, the first-invoke class,
# idle time), and at SHUTDOWN (or SIGTERM, whichever comes first, once) writes the shutdown record
# and the environment record, then exits 0. It never exits before that: Lambda treats an
# extension that exits early as Extension.Crash and fails every invoke. The per-invoke path runs
# builtins only (no fork, no subshell, no external command) and reads a bounded event. The metric
# names, units, dimension sets and namespace are those of src/concurrency_observer/schema.py;
# docs/runtimes.md says what is and is not recorded.
#
# SnapStart (Java and .NET run the shell engine): Lambda runs init once, snapshots the environment
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
# Run as the extension: executed (the launcher's exec of bash -p), or read by the launcher itself
# with `.` when its sh is bash (then bash starts in POSIX mode, left below, and -p is the
# launcher's). Sourced by anything else (the tests), it only defines its functions.
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
as_extension=''
[[ ${BASH_SOURCE[0]} == "$0" || ${BASH_SOURCE[1]-} == "$0" ]] && as_extension=1

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
readonly MAX_EVENT=65536 # bytes of an event body read at most (an INVOKE event is under 1 KB)
readonly MAX_HEADER_LINE=8192 # bytes of one response header line read at most
readonly MAX_HEADERS=64 # response header lines read at most
readonly MAX_HEAD=16384 # bytes of a response's status line and headers looked at
readonly MAX_ANSWER=$((MAX_HEAD + MAX_EVENT)) # bytes of one response read at most
readonly MAX_REGISTER_BODY=4096 # bytes of the Register response handed to Python
readonly MAX_THRESHOLD_MS=3600000 # CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS, as extension/config.py
readonly DEFAULT_THRESHOLD_MS=10000 # schema.DEFAULT_PROMPT_THRESHOLD_S
readonly LAMBDA_PYTHON=/var/lang/bin/python3 # the interpreter of Lambda's Python runtimes
readonly PROBE_TIMEOUT_S=2 # how long a python3 from PATH may take to prove it runs Python 3.10+
# How long Python may take from its start to its first /event/next before this shell takes over:
# its whole init work (the Telemetry subscription, the init record within its budget of at most
# 5 s) fits, and a Python that hangs still leaves the function's init (10 s) time to finish.
handoff_wait_s=8 # a variable: the tests shorten it (the environment cannot: it is set here)
readonly TOO_OLD=3 CANNOT_IMPORT=4 # bootstrap.py's exit statuses: try the next python3
readonly INVALID_EVENT_TYPE=Extension.InvalidEventType # a register refused for its events (LMI)

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

configure_register() {
    # What Register needs, read before it: the log level (for its error line), the init type and
    # the events. Sets $warning (empty, or sentences for the init log line).
    warning=''
    trimmed "${CONCURRENCY_OBSERVER_LOG_LEVEL:-}"
    log_level=${trim^^}
    trimmed "${AWS_LAMBDA_INITIALIZATION_TYPE:-}"
    init_type=on-demand
    if [[ -n $trim ]]; then
        safe_token "$trim"
        init_type=$token
    fi
    configure_events
}

configure_events() {
    # Sets $events_json: INVOKE and SHUTDOWN, or SHUTDOWN alone when CONCURRENCY_OBSERVER_EVENTS
    # says so (as extension/config.py reads it: comma-separated, case and spaces ignored) or on
    # Lambda Managed Instances, which refuse INVOKE to external extensions.
    local rest part shutdown='' invoke='' other=''
    trimmed "${CONCURRENCY_OBSERVER_EVENTS:-}"
    rest=${trim^^},
    while [[ $rest == *,* ]]; do
        trimmed "${rest%%,*}"
        part=$trim
        rest=${rest#*,}
        case $part in
            '') ;;
            SHUTDOWN) shutdown=1 ;;
            INVOKE) invoke=1 ;;
            *) other=1 ;;
        esac
    done
    shutdown_only=''
    if [[ -n $shutdown && -z $invoke && -z $other ]]; then
        shutdown_only=1
    elif [[ -n $other || -n $invoke && -z $shutdown ]]; then
        warning+="CONCURRENCY_OBSERVER_EVENTS is not INVOKE,SHUTDOWN or SHUTDOWN"
        warning+="; using INVOKE,SHUTDOWN; "
    fi
    configured_shutdown_only=$shutdown_only
    [[ $init_type == lambda-managed-instances ]] && shutdown_only=1
    set_events
}

set_events() {
    # Sets $events_json and $events_list (for Python) from $shutdown_only.
    if [[ -n $shutdown_only ]]; then
        events_json='["SHUTDOWN"]'
        events_list=SHUTDOWN
    else
        events_json='["INVOKE","SHUTDOWN"]'
        events_list=INVOKE,SHUTDOWN
    fi
}

request() {
    # request METHOD PATH BODY [HEADER...]: one HTTP/1.1 exchange with the Extensions API on a
    # fresh connection. Sets $status (000 when no answer), $extension_id (if the answer names
    # one) and $body; fails when nothing came back. Builtins only (it runs for every event), and
    # bounded: the answer is read whole, at most MAX_ANSWER bytes, in a few blocks (read -N; a
    # line read takes one system call per byte on a socket, about 170 an event), up to the end
    # the server gives it (Connection: close, which HTTP/1.1 servers honour: RFC 9112 9.6).
    local method=$1 path=$2 data=$3 header answer=''
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
    IFS= read -r -d '' -N "$MAX_ANSWER" answer <&3 # its status is 1 at the end: the text says
    exec 3<&-
    [[ -n $answer ]] || return 1
    read_answer "$answer"
}

read_answer() {
    # read_answer TEXT: the status, $extension_id and $body of one HTTP/1.1 answer. Each step is
    # linear in what it reads: the head ends at the first empty line (at most MAX_HEAD bytes are
    # looked at), its status line and at most MAX_HEADERS lines of at most MAX_HEADER_LINE bytes.
    local head bare line rest length='' lines=0 ending=4
    # The head ends at the first empty line: CRLF CRLF, or LF LF from a server that sends bare
    # line feeds (each line's CR, if any, is dropped below).
    head=${1%%$'\r\n\r\n'*}
    bare=${1%%$'\n\n'*}
    if ((${#bare} < ${#head})); then
        head=$bare
        ending=2
    fi
    if ((${#head} < ${#1})); then
        body=${1:${#head}+ending}
    fi
    head=${head:0:MAX_HEAD}
    line=${head%%$'\n'*}
    rest=${head:${#line}+1}
    line=${line%$'\r'}
    # The second field of the status line, as read with IFS=' ' would split it.
    if [[ ${line:0:MAX_HEADER_LINE} =~ ^\ *[^\ ]+\ +([^\ ]+) ]]; then
        status=${BASH_REMATCH[1]}
    fi
    while ((lines++ < MAX_HEADERS)) && [[ -n $rest ]]; do
        line=${rest%%$'\n'*}
        rest=${rest:${#line}+1}
        line=${line%$'\r'}
        line=${line:0:MAX_HEADER_LINE}
        case ${line,,} in
            lambda-extension-identifier:*) trimmed "${line#*:}" && extension_id=$trim ;;
            content-length:*) trimmed "${line#*:}" && length=$trim ;;
        esac
    done
    if [[ $length == +([0-9]) && ${#length} -lt 10 ]] && ((10#$length < MAX_EVENT)); then
        body=${body:0:10#$length}
    else
        body=${body:0:MAX_EVENT}
    fi
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
    # Registers for $events_json; at once again for SHUTDOWN alone when Lambda refuses INVOKE
    # (403 Extension.InvalidEventType: Lambda Managed Instances, or any mode that refuses it the
    # same way). Until registered there is no identifier to poll with: keep trying (init waits
    # for it, and a process that exits now fails the environment). One log line, at the first
    # failure. Sets $extension_id and $register_body (the answer: functionName, handler...).
    local failures=0
    extension_id=''
    until request POST "$API_PATH/register" "{\"events\":$events_json}" \
        "Lambda-Extension-Name: $extension_name" 'Content-Type: application/json' &&
        [[ $status == 200 && -n $extension_id ]]; do
        [[ -n $sigterm_early ]] && break # shutting down before registered: main writes the records
        if [[ $status == 403 && -z $shutdown_only && $body == *"$INVALID_EVENT_TYPE"* ]]; then
            shutdown_only=1
            set_events
            continue
        fi
        if ((backoff == 0)); then
            log_line ERROR "cannot register with the Extensions API at '$api' (HTTP $status)," \
                "retrying"
        fi
        next_backoff
        # A register with INVOKE refused three times in a row, in whatever way: SHUTDOWN alone,
        # which every mode accepts (the Python engine used to hand over to this script then).
        if (((failures += 1) == 3)) && [[ -z $shutdown_only ]]; then
            log_line WARNING "register for INVOKE,SHUTDOWN failed 3 times; registering for SHUTDOWN"
            shutdown_only=1
            set_events
        fi
    done
    register_body=${body:0:MAX_REGISTER_BODY}
    counting=''
    [[ -z $shutdown_only ]] && counting=1
    backoff=0
}

clock_offset() {
    # Sets $offset: wall clock minus uptime (ms), '' when the uptime is unknown; and $uptime.
    now_ms
    uptime_ms
    offset=${uptime:+$((now - uptime))}
}

# -- the front door: register before anything else is read --------------------------------------
# Lambda starts the runtime once every extension has registered, so everything up to Register is
# paid by the init in full. bash reads a script one command at a time: the functions above (what
# Register needs) are all it has read when front_door runs; the engine's and the hand-off's below
# are read after Register, beside the runtime's own init.

sigterm_early='' # a SIGTERM before main's own trap is set: main acts on it
front_door() {
    # $1: the name to register under. Reads what Register needs (configure_register; main reads
    # the rest) and registers; sets $started_ms (the environment's start, the records' initTime)
    # and $init_offset. A SIGTERM meanwhile ends the register loop (on_sigterm, defined below, is
    # not read yet): main writes the records.
    local now offset uptime
    clock_offset
    started_ms=$now
    init_offset=$offset
    # A closed stdout must give a failed write, not a death by SIGPIPE.
    trap '' PIPE
    trap 'sigterm_early=1' TERM
    configure_register
    # host:port, set by Lambda; anything else could only make the requests say something else.
    capped "${AWS_LAMBDA_RUNTIME_API:-}"
    api=$text
    [[ $api == *[!A-Za-z0-9.:_-]* ]] && api=''
    api_host=${api%:*}
    api_port=${api##*:}
    extension_name=${1:-${0##*/}}
    register
    front_door_done=1
}

front_door_done=''
if [[ -n $as_extension ]]; then
    front_door "$@"
fi

# -- the hand-off's start: Lambda's python3 at once, before bash reads the rest -----------------
# The Python engine's start is the longest step before the first /event/next. Lambda's
# /var/lang/bin/python3 therefore starts right after Register, and this shell waits for its
# milestones (await_python) before it reads the engine and main below: about 500 lines bash
# would otherwise parse, with main's settings, inside the init (about 1.3 ms here: the next
# /event/next after Register is Python's, docs/benchmarks.md). Once Python owns the loop, this
# shell waits for it to end (python_wait) still before reading on: parsing the rest and running
# main's settings would take a core from the runtime's init for nothing, since Python owns the
# loop to the end unless it fails. Python ending well ends this shell; Python failing, or
# failing to start, lets bash read on, and main acts on what launch_early found, as when it
# starts Python itself. A SIGTERM while Python owns the loop is passed on to it; one while
# Python starts sets $sigterm_early, on which main acts (bash runs a trap once the read in
# progress returns: Python's milestones come within moments, or within handoff_wait_s).

owner=shell # who owns the event loop: shell, handing (Python started, not its yet) or python
python_pid=''
milestones='' # the read end of Python's milestone pipe
python_init='' # Python said "init": the init record is its own
interrupted='' # set by the SIGTERM trap while Python owns the loop
handoff_deadline=0 # SECONDS by which Python must own the loop
log_fd='' # the function's log, for Python's stdout (its own is the milestone pipe)
init_written='' # the init record is out (Python's, or this shell's)
early_python='' # launch_early started Lambda's python3 and awaited it: $early_status says how
early_status=2
python_ended='' # python_wait saw Python end: $python_status is its exit status

locate_code() {
    # Sets $code_dir (where this file and bootstrap.py are) and $log_fd, once.
    code_dir=${BASH_SOURCE[0]%/*}
    [[ $code_dir == "${BASH_SOURCE[0]}" ]] && code_dir=.
    [[ -n $log_fd ]] || exec {log_fd}>&1
}

configure_engine() {
    # Sets $engine: python or bash (CONCURRENCY_OBSERVER_ENGINE: auto, python or bash). auto
    # is bash for SHUTDOWN only + emf, where it writes what Python would at a fraction of the
    # cost (docs/benchmarks.md), and python otherwise.
    local sink
    trimmed "${CONCURRENCY_OBSERVER_ENGINE:-}"
    engine=${trim,,}
    trimmed "${CONCURRENCY_OBSERVER_SINK:-}"
    sink=${trim,,}
    case $engine in
        bash | python) ;;
        *)
            engine=python
            [[ $sink == emf && -n $configured_shutdown_only ]] && engine=bash
            ;;
    esac
}

launch_python() {
    # launch_python PYTHON ORIGIN: starts the Python engine as this shell's child (a coprocess),
    # handing it the identifier; await_python reads its milestones. Sets $owner (handing).
    owner=handing
    python_init=''
    handoff_deadline=$((SECONDS + handoff_wait_s))
    coproc PYTHON_ENGINE {
        exec "$1" -I -S -B "$code_dir/bootstrap.py" "$extension_name" "$2" \
            --handoff 3 "$extension_id" "$events_list" "$register_body" "$started_ms" \
            3>&1 1>&"$log_fd" {log_fd}>&- </dev/null
    }
    python_pid=$PYTHON_ENGINE_PID
    # At once: bash forgets a coprocess's descriptors when it reaps it. If it has ended already
    # (an interpreter that cannot start), it has written nothing, and the status says the rest.
    { exec {milestones}<&"${PYTHON_ENGINE[0]}"; } 2>/dev/null || milestones=''
}

await_python() {
    # await_python PYTHON: reads the milestones of the Python engine launch_python started until
    # it owns the loop (0). Otherwise, once it has ended or been stopped: 2 when that interpreter
    # cannot run the engine (too old, cannot import it) and did nothing, so the next may be
    # tried; 1 when this shell is to go on.
    local line left status
    while [[ -n $milestones ]]; do
        left=$((handoff_deadline - SECONDS))
        ((left > 0)) || break
        IFS= read -r -t "$left" line <&"$milestones" || break
        case $line in
            init) python_init=1 ;;
            loop)
                owner=python
                exec {milestones}<&-
                milestones=''
                return 0
                ;;
        esac
    done
    stop_python
    status=$python_status
    if [[ -n $python_init ]]; then
        init_written=1
    elif ((status == TOO_OLD)); then
        return 2
    elif ((status == CANNOT_IMPORT)); then
        log_line WARNING "$1 cannot import the Python engine; trying the next python3"
        return 2
    fi
    log_line WARNING "the Python engine ($1) ended with status $status before its first" \
        "/event/next; the bash engine goes on with the same registration"
    return 1
}

stop_python() {
    # Stops Python (SIGKILL: it must not write a record now), reads what it had said, reaps it.
    # Sets $python_status and $owner (shell).
    local line
    kill -KILL "$python_pid" 2>/dev/null
    if [[ -n $milestones ]]; then
        while IFS= read -r line <&"$milestones"; do
            [[ $line == init ]] && python_init=1
        done
        exec {milestones}<&-
        milestones=''
    fi
    wait "$python_pid" 2>/dev/null
    python_status=$?
    [[ -n $python_init ]] && init_written=1
    owner=shell
}

python_wait() {
    # Python owns the loop: waits for it to end, and sets $python_status and $python_ended. A
    # trapped SIGTERM (passed on to Python) ends a wait early, hence the loop.
    while :; do
        interrupted=''
        wait "$python_pid" 2>/dev/null
        python_status=$?
        # Cut short by the trap: wait again, for the end or for the status bash has kept.
        [[ -n $interrupted ]] || break
    done
    python_ended=1
}

launch_early() {
    # Starts Lambda's python3 when main would: registered, no SIGTERM yet, and the Python engine
    # chosen (configure_engine, which main's configure runs again on the same variables). Once
    # Python owns the loop, waits for its end here; ending well, it ends this shell.
    [[ -n $extension_id && -z $sigterm_early && -x $LAMBDA_PYTHON ]] || return 0
    configure_engine
    [[ $engine == python ]] || return 0
    locate_code
    launch_python "$LAMBDA_PYTHON" lambda
    await_python "$LAMBDA_PYTHON"
    early_status=$?
    early_python=1
    ((early_status == 0)) || return 0
    # on_sigterm's case for Python owning the loop; on_sigterm itself is not read yet.
    trap 'kill -TERM "$python_pid" 2>/dev/null; interrupted=1' TERM
    if [[ -n $sigterm_early ]]; then
        kill -TERM "$python_pid" 2>/dev/null
        sigterm_early=''
    fi
    python_wait
    ((python_status == 0)) && exit 0
    python_pid='' # reaped: its number may be another process's by now
}

if [[ -n $as_extension ]]; then
    launch_early
fi

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

configure() {
    # The rest of the environment, read once after Register (beside the runtime's init), like
    # extension/config.py: the record's constant parts, the profile, the threshold and the engine.
    # $warning keeps the order of extension/config.py's warnings. The shell engine's sink is
    # always emf, whatever CONCURRENCY_OBSERVER_SINK says (it cannot sign a PutMetricData request).
    local events_warning=$warning
    warning=''
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
    configure_profile
    warning+=$events_warning
    configure_threshold
    configure_engine
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

configure_threshold() {
    # Sets $threshold_ms: CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS (0-3600000), as
    # extension/config.py reads it; anything else adds a sentence to $warning and uses 10000.
    trimmed "${CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS:-}"
    threshold_ms=$DEFAULT_THRESHOLD_MS
    [[ -z $trim ]] && return
    if [[ $trim == +([0-9]) && ${#trim} -le 18 ]] && ((10#$trim <= MAX_THRESHOLD_MS)); then
        threshold_ms=$((10#$trim))
    else
        warning+="CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS is not a whole number of milliseconds"
        warning+=" from 0 to $MAX_THRESHOLD_MS; using $DEFAULT_THRESHOLD_MS; "
    fi
}

seconds() {
    # Sets $secs: $1 milliseconds as seconds with 3 decimals (never negative: a clock step back).
    local ms=$(($1 < 0 ? 0 : $1))
    printf -v secs '%d.%03d' $((ms / 1000)) $((ms % 1000))
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

invoke_facts() {
    # invoke_facts SHUTDOWN_MS: sets $idle (ms since the last INVOKE, else since init) and, when
    # INVOKE is counted, $first_class and $ttfi (ms; '' when never invoked), as
    # extension/records.py's classify_first_invoke: never, prompt (first INVOKE within
    # $threshold_ms of init) or delayed.
    idle=$(($1 - ${last_invoke_ms:-$started_ms}))
    ((idle < 0)) && idle=0
    first_class=''
    ttfi=''
    [[ -n $counting ]] || return 0
    if ((invocations == 0)); then
        first_class=never
        return 0
    fi
    ttfi=$((first_invoke_ms - started_ms))
    ((ttfi < 0)) && ttfi=0
    first_class=delayed
    ((ttfi <= threshold_ms)) && first_class=prompt
    return 0
}

emit_environment_record() {
    # emit_environment_record SHUTDOWN_MS REASON_TOKEN: the environment record, one line (after
    # invoke_facts). Registered for SHUTDOWN only, the idle time runs from init: the lifetime.
    local lifetime=$(($1 - started_ms)) counted=''
    ((lifetime < 0)) && lifetime=0
    if [[ -n $counting ]]; then
        counted=",\"invocations\":$invocations"
        [[ -n $ttfi ]] && counted+=",\"timeToFirstInvokeMs\":$ttfi"
        counted+=",\"firstInvoke\":\"$first_class\""
    fi
    emit "{\"concurrencyObserver\":\"$RECORD_VERSION\",\"functionName\":$record_function_json,\"functionVersion\":$record_version_json,\"initType\":\"$init_type\",\"environmentId\":\"$environment_id\",\"engine\":\"bash\",\"metrics\":\"$metrics\",\"initTime\":$started_ms,\"shutdownTime\":$1,\"shutdownReason\":\"$2\",\"lifetimeMs\":$lifetime,\"idleMs\":$idle$counted}"
}

emit_full_shutdown() {
    # emit_full_shutdown SHUTDOWN_MS REASON_TOKEN LIFETIME_S: the full profile's shutdown line,
    # the document extension/sinks/emf.py writes for records.build_shutdown_record's record.
    local sets="$BASE_SETS,[\"FunctionName\",\"ShutdownReason\"]" values="$base_values,\"ShutdownReason\":\"$2\""
    local names='{"Name":"EnvironmentLifetime","Unit":"Seconds"},{"Name":"EnvironmentIdleTime","Unit":"Seconds"}'
    local numbers secs
    seconds "$idle"
    numbers="\"EnvironmentLifetime\":$3,\"EnvironmentIdleTime\":$secs"
    if [[ -n $first_class ]]; then
        sets+=',["FunctionName","InitType","FirstInvoke"]'
        values+=",\"FirstInvoke\":\"$first_class\""
    fi
    if [[ -n $counting ]]; then
        names+=',{"Name":"EnvironmentInvocations","Unit":"Count"}'
        numbers+=",\"EnvironmentInvocations\":$invocations"
    fi
    if [[ -n $ttfi ]]; then
        seconds "$ttfi"
        names+=',{"Name":"EnvironmentTimeToFirstInvoke","Unit":"Seconds"}'
        numbers+=",\"EnvironmentTimeToFirstInvoke\":$secs"
    fi
    emit "{\"_aws\":{\"Timestamp\":$1,\"CloudWatchMetrics\":[{\"Namespace\":\"$namespace\",\"Dimensions\":[$sets],\"Metrics\":[{\"Name\":\"EnvironmentShutdown\",\"Unit\":\"Count\"}]},{\"Namespace\":\"$namespace\",\"Dimensions\":[$BASE_SETS],\"Metrics\":[$names]}]},$values,\"EnvironmentShutdown\":1,$numbers}"
}

emit() {
    # One EMF document on one line, in one write.
    printf '%s\n' "$1" || :
}

emit_init() {
    init_written=1
    if [[ $metrics == lean ]]; then
        emit_delta "$started_ms" 1
        return
    fi
    emit "{\"_aws\":{\"Timestamp\":$started_ms,\"CloudWatchMetrics\":[{\"Namespace\":\"$namespace\",\"Dimensions\":[$BASE_SETS],\"Metrics\":[{\"Name\":\"EnvironmentInit\",\"Unit\":\"Count\"}]}]},$base_values,\"EnvironmentInit\":1}"
}

engine_label() {
    # Sets $label: the engine and its events, for the two INFO lines.
    label="bash engine ($events_list, emf)"
    [[ -n $python_init ]] && label+=" after the Python engine, whose init record stands"
}

shutdown_written=''
records_off='' # set once Python owned the loop and ended early: its records are its own
finish() {
    # Writes the shutdown record once and exits 0; $1 is the reason as Lambda sent it.
    [[ -n $shutdown_written ]] && exit 0
    shutdown_written=1
    trap '' TERM
    if [[ -n $records_off ]]; then
        log_line INFO "shutdown ($1): the Python engine's records stand, none written here"
        exit 0
    fi
    local now token secs lifetime idle first_class ttfi label summary delivered
    # SIGTERM before the init record went out: write it too, so every shutdown has its init.
    [[ -n $init_written ]] || emit_init
    now_ms
    safe_token "$1"
    invoke_facts "$now"
    seconds $((now - started_ms))
    lifetime=$secs
    emit_environment_record "$now" "$token"
    if [[ $metrics == lean ]]; then
        emit_delta "$now" -1
    else
        emit_full_shutdown "$now" "$token" "$lifetime"
    fi
    engine_label
    summary="shutdown ($token) after $lifetime s"
    if [[ -n $counting ]]; then summary+=", $invocations invocations"; fi
    ((restores > 0)) && summary+=" (restored from a snapshot)"
    delivered=init+shutdown
    [[ -n $python_init ]] && delivered=shutdown
    log_line INFO "$summary, $label: delivered $delivered"
    exit 0
}

fast_now_ms() {
    # Sets $now (epoch ms) without a fork, for the per-invoke path: $EPOCHREALTIME (bash 5);
    # else the uptime clock plus the offset measured at init (bash 4.2: 10 ms steps); else whole
    # seconds from printf's %(%s)T. Sets $coarse when the wall clock was read in whole seconds.
    local stamp
    coarse=''
    if [[ ${#EPOCHREALTIME} -lt 30 && ${EPOCHREALTIME:-} == [0-9]*([0-9])[.,][0-9][0-9][0-9]*([0-9]) ]]; then
        stamp=${EPOCHREALTIME/[.,]/}
        now=$((10#${stamp:0:${#stamp}-3}))
        return
    fi
    uptime_ms
    if [[ -n $uptime && -n $init_offset && $1 != wall ]]; then
        now=$((uptime + init_offset))
        return
    fi
    printf -v stamp '%(%s)T' -1
    now=$((stamp * 1000))
    coarse=1
}

check_restore() {
    # After a wait on /event/next of a snap-start environment: if the wall clock jumped against
    # the uptime since $1 (the uptime when the wait began), this is a restored copy of the
    # snapshot: its life starts at the restore, which is the uptime elapsed since $1 ago.
    local before=$1 now uptime offset coarse slack=0
    [[ $init_type == snap-start && -n $before && -n $init_offset ]] || return 0
    fast_now_ms wall
    uptime_ms
    [[ -n $uptime ]] || return 0
    offset=$((now - uptime))
    # A wall clock read in whole seconds may lag by up to one: the jump must exceed that too.
    [[ -n $coarse ]] && slack=1000
    ((offset - init_offset > RESTORE_JUMP_MS + slack)) || return 0
    started_ms=$((now - (uptime - before)))
    init_offset=$offset
    restores=$((restores + 1))
    invocations=0
    first_invoke_ms=''
    last_invoke_ms=''
    new_environment_id
    emit_init
}

invocations=0
first_invoke_ms=''
last_invoke_ms=''
on_invoke() {
    # One INVOKE: builtins only, no fork.
    local now coarse
    fast_now_ms
    invocations=$((invocations + 1))
    first_invoke_ms=${first_invoke_ms:-$now}
    last_invoke_ms=$now
}

readonly INVOKE_EVENT='"eventType"[[:space:]]*:[[:space:]]*"INVOKE"'
readonly SHUTDOWN_EVENT='"eventType"[[:space:]]*:[[:space:]]*"SHUTDOWN"'
readonly SHUTDOWN_REASON='"shutdownReason"[[:space:]]*:[[:space:]]*"([^"]*)"'

serve_events() {
    # /event/next until SHUTDOWN: INVOKE is counted, an unknown event skipped; a failed call
    # backs off and tries again.
    local reason waiting_since uptime
    while :; do
        uptime_ms
        waiting_since=$uptime
        if request GET "$API_PATH/event/next" '' "Lambda-Extension-Identifier: $extension_id" &&
            [[ $status == 200 ]]; then
            backoff=0
            check_restore "$waiting_since"
            if [[ $body =~ $INVOKE_EVENT ]]; then
                [[ -n $counting ]] && on_invoke
            elif [[ $body =~ $SHUTDOWN_EVENT ]]; then
                reason=''
                if [[ $body =~ $SHUTDOWN_REASON ]]; then
                    reason=${BASH_REMATCH[1]}
                fi
                finish "$reason"
            fi
        else
            next_backoff
        fi
    done
}

# -- the hand-off to the Python engine ------------------------------------------------------------

on_sigterm() {
    # SIGTERM: passed on to Python once it owns the loop (it writes the records); before that,
    # Python (which ignores SIGTERM until then) is stopped and this shell writes them.
    case $owner in
        python)
            kill -TERM "$python_pid" 2>/dev/null
            interrupted=1
            ;;
        handing)
            stop_python
            finish sigterm
            ;;
        *) finish sigterm ;;
    esac
}

probe_python() {
    # probe_python PATH: whether PATH runs Python 3.10+ code, answered within $PROBE_TIMEOUT_S.
    # The exit status asked for (100-199, from this shell's pid) proves that it ran this line: a
    # failing or fake interpreter exits 0, 1, 127 or some constant. A watchdog kills a probe that
    # hangs. Its output goes nowhere: junk cannot reach the function's log. Only off the Lambda
    # Python runtimes, and after Register: it runs beside the runtime's init.
    local expected=$(($$ % 100 + 100)) probe watchdog='' answer
    "$1" -I -S -c 'import sys; sys.exit(int(sys.argv[1]) if sys.version_info >= (3, 10) else 3)' \
        "$expected" </dev/null >/dev/null 2>&1 &
    probe=$!
    (
        # Stopped by TERM when the probe ends first: take the sleep along, leave nothing.
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        "$sleep_command" "$PROBE_TIMEOUT_S" &
        nap=$!
        wait "$nap" && kill -9 "$probe"
    ) </dev/null >/dev/null 2>&1 &
    watchdog=$!
    wait "$probe" 2>/dev/null # bash reports a killed job on stderr: not the function's log
    answer=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    [[ $answer == "$expected" ]]
}

path_python3() {
    # Sets $found: the first executable python3 on PATH, '' if none (builtins: no command -v
    # subshell). PATH is the function's, and a user's: what it finds is probed before use.
    local rest=${PATH:-}: dir
    found=''
    while [[ $rest == *:* ]]; do
        dir=${rest%%:*}
        rest=${rest#*:}
        if [[ -f ${dir:-.}/python3 && -x ${dir:-.}/python3 ]]; then
            found=${dir:-.}/python3
            return
        fi
    done
}

start_python() {
    # start_python PYTHON ORIGIN: launch_python, then await_python.
    launch_python "$1" "$2"
    await_python "$1"
}

wait_for_python() {
    # Python owns the loop: wait for it to end, unless launch_early did. Its status 0 comes after
    # SHUTDOWN or SIGTERM: done. Anything else (killed) before SHUTDOWN: this process must stay
    # until SHUTDOWN, so it serves the events, writing nothing.
    [[ -n $python_ended ]] || python_wait
    ((python_status == 0)) && exit 0
    owner=shell
    records_off=1
    log_line WARNING "the Python engine ended with status $python_status after its first" \
        "/event/next; serving SHUTDOWN, its records stand"
    serve_events
}

hand_to_python() {
    # Lambda's /var/lang/bin/python3 first, run directly (bootstrap.py checks its version; the
    # front door may have started it already: launch_early); then the first python3 on PATH, once
    # probed. Returns when this shell is to serve the events.
    local found status=2
    if [[ -n $early_python ]]; then
        status=$early_status
    elif [[ -x $LAMBDA_PYTHON ]]; then
        start_python "$LAMBDA_PYTHON" lambda
        status=$?
    fi
    case $status in
        0) wait_for_python ;;
        1) return ;;
    esac
    path_python3
    [[ -n $found && $found != "$LAMBDA_PYTHON" ]] || return
    probe_python "$found" || return
    start_python "$found" path && wait_for_python
}

main() {
    # $1: the name to register under. Executed, the front door has registered already; sourced
    # (the tests), main runs it.
    local now label
    [[ -n $front_door_done ]] || front_door "$@"
    configure
    now=$started_ms # new_environment_id's last resort
    restores=0
    new_environment_id
    trap on_sigterm TERM
    [[ -n $sigterm_early ]] && on_sigterm
    locate_code
    [[ $engine == python && -n $extension_id ]] && hand_to_python
    owner=shell
    local delivered=': init record delivered'
    [[ -n $init_written ]] && delivered=''
    [[ -n $init_written ]] || emit_init
    engine_label
    log_line INFO "${warning}$init_type environment of $function_name, $label$delivered"
    serve_events
}

if [[ -n $as_extension ]]; then
    main "$@"
fi
