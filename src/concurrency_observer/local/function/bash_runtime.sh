#!/bin/bash
# A Lambda custom runtime in bash alone (like a provided.al2023 "bootstrap"), for environments with
# no python3: it loops on the Runtime API over /dev/tcp and answers every invocation with
# {"runtime":"bash","requestId":...}. The local harness runs it to try the layer on a runtime that
# is not Python (EnvironmentSettings.runtime_command).
# Like function/handler.py it keeps an environment busy for the event's "sleep_ms" (bounded to
# 60 s), and it honours the init gate: while CONCURRENCY_OBSERVER_LOCAL_INIT_GATE names a missing
# file, its init waits before the first /next (the local control plane's held init; docs/simulate.md).
export LC_ALL=C
readonly API=${AWS_LAMBDA_RUNTIME_API:?AWS_LAMBDA_RUNTIME_API is not set}
readonly BASE=/2018-06-01/runtime/invocation
readonly MAX_SLEEP_MS=60000

exchange() {
    # exchange METHOD PATH BODY: one request on a fresh connection; sets $request_id (if any)
    # and $body (the answer's body).
    local line
    exec 3<>"/dev/tcp/${API%:*}/${API##*:}"
    printf '%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
        "$1" "$2" "$API" "${#3}" "$3" >&3
    IFS= read -r _ <&3 # the status line: a next without a request id is retried
    while IFS= read -r line <&3; do
        line=${line%$'\r'}
        [[ -z $line ]] && break
        if [[ ${line,,} == lambda-runtime-aws-request-id:* ]]; then
            request_id=${line#*: }
        fi
    done
    body=''
    IFS= read -r -d '' body <&3 || :
    exec 3<&-
}

wait_for_gate() {
    # The init gate: say the init reached it (the extensions have registered by now), and when
    # (the Telemetry emulator reports the init as ended there, as function/handler.py), then wait.
    local gate=${CONCURRENCY_OBSERVER_LOCAL_INIT_GATE:-} waited=0
    [[ -n $gate ]] || return 0
    printf 'INIT HELD(at: %s)\n' "${EPOCHREALTIME:-$(date +%s.%N)}"
    : >"$gate.held"
    while [[ ! -e $gate ]] && ((waited < 180000)); do # never hold forever: at most an hour
        sleep 0.02
        waited=$((waited + 1))
    done
}

work() {
    # Sleep for the event's "sleep_ms" (a whole number of milliseconds), if it has one.
    local ms
    [[ $1 =~ \"sleep_ms\"[[:space:]]*:[[:space:]]*([0-9]+) ]] || return 0
    ms=$((10#${BASH_REMATCH[1]:0:6}))
    ((ms > MAX_SLEEP_MS)) && ms=$MAX_SLEEP_MS
    ((ms > 0)) && sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    return 0
}

wait_for_gate
while :; do
    request_id=''
    exchange GET "$BASE/next" ''
    if [[ -z $request_id ]]; then
        sleep 0.1
        continue
    fi
    work "$body"
    exchange POST "$BASE/$request_id/response" "{\"runtime\":\"bash\",\"requestId\":\"$request_id\"}"
done
