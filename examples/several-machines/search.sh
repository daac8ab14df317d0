#!/usr/bin/env bash
# A search across three machines, simulated by hosts.sh: the chief on NAME-chief serves the oracle on
# its private address only, one worker on each of NAME-w1 and NAME-w2 takes trials from it, and all three
# use the same runs directory. The commands below are the ones to type on real machines (without the
# `ip netns exec` prefix). tests/tune/test_several_machines.py runs these steps, plus a killed worker and a
# killed chief.
#
#   sudo examples/several-machines/search.sh CONFIG RUNS_DIR [NAME]
#
# Needs root (network namespaces) and dlcli on PATH (or DLCLI="python -m dlcli.cli").
set -euo pipefail

config=${1:?usage: search.sh CONFIG RUNS_DIR [NAME]}
runs=$(realpath -m "${2:?usage: search.sh CONFIG RUNS_DIR [NAME]}")
name=${3:-dlcli}
dlcli=${DLCLI:-dlcli}
here=$(dirname "$0")
chief_ip=10.231.0.1 port=8000

"$here/hosts.sh" up "$name"
trap '"$here/hosts.sh" down "$name"' EXIT   # also stops whatever still runs in them
mkdir -p "$runs"

# 1. The chief: serves the search on its private address only (not 0.0.0.0), starts no local worker.
KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=$chief_ip KERASTUNER_ORACLE_PORT=$port \
    ip netns exec "$name-chief" $dlcli tune "$config" --runs-dir "$runs" --workers 0 > "$runs/chief.log" 2>&1 &
chief=$!

# 2. Wait for its run directory (the chief prints the worker command with it once it serves).
for _ in $(seq 120); do
    run=$(sed -n 's/.* --join \(.*\)$/\1/p' "$runs/chief.log" | head -1)
    [ -n "$run" ] && break
    kill -0 $chief 2>/dev/null || { cat "$runs/chief.log"; exit 1; }
    sleep 1
done
[ -n "$run" ] || { echo "the chief did not start serving in 120 s" >&2; exit 1; }

# 3. A worker on each other machine, each with its own id, the chief's address and the shared run dir.
for host in w1 w2; do
    KERASTUNER_TUNER_ID=$host KERASTUNER_ORACLE_IP=$chief_ip KERASTUNER_ORACLE_PORT=$port \
        ip netns exec "$name-$host" $dlcli tune "$run/config.yaml" --join "$run" > "$runs/$host.log" 2>&1 &
done

# 4. The chief ends when every trial has ended; the workers when it tells them there is no more.
wait $chief
wait
cat "$runs/chief.log"
echo "trials: $run/trials.csv"
