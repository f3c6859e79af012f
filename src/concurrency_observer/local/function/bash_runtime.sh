#!/bin/bash
# A Lambda custom runtime in bash alone (like a provided.al2023 "bootstrap"), for environments with
# no python3: it loops on the Runtime API over /dev/tcp and answers every invocation with
# {"runtime":"bash","requestId":...}. The local harness runs it to try the layer on a runtime that
# is not Python (EnvironmentSettings.runtime_command).
export LC_ALL=C
readonly API=${AWS_LAMBDA_RUNTIME_API:?AWS_LAMBDA_RUNTIME_API is not set}
readonly BASE=/2018-06-01/runtime/invocation

exchange() {
    # exchange METHOD PATH BODY: one request on a fresh connection; sets $request_id (if any).
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
    IFS= read -r -d '' _ <&3 || :
    exec 3<&-
}

while :; do
    request_id=''
    exchange GET "$BASE/next" ''
    if [[ -z $request_id ]]; then
        sleep 0.1
        continue
    fi
    exchange POST "$BASE/$request_id/response" "{\"runtime\":\"bash\",\"requestId\":\"$request_id\"}"
done
