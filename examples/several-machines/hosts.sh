#!/usr/bin/env bash
# Three "machines" on one Linux host, for trying (and testing) a search across machines:
# network namespaces NAME-chief (10.231.0.1), NAME-w1 (10.231.0.2) and NAME-w2 (10.231.0.3), each with
# its own loopback and one veth into a bridge that lives in a fourth namespace, NAME-sw. Nothing is added
# to the host's own network: their traffic stays among these namespaces. The file system is not
# namespaced, so a runs directory is "shared storage" for all three.
#
#   sudo examples/several-machines/hosts.sh up   NAME     # create them
#   sudo ip netns exec NAME-w1 COMMAND                    # run COMMAND "on" w1
#   sudo examples/several-machines/hosts.sh down NAME     # remove them (and everything inside)
#
# Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2. NAME: letters and digits, at most 8.
set -euo pipefail

action=${1:?usage: hosts.sh up|down NAME}
name=${2:?usage: hosts.sh up|down NAME}
hosts=(chief w1 w2)

down() {
    for ns in "${hosts[@]/#/$name-}" "$name-sw"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true  # whatever still runs "on" it
        ip netns delete "$ns" 2>/dev/null || true                             # its veth ends go with it
    done
}

up() {
    ip netns add "$name-sw"
    ip -n "$name-sw" link add br0 type bridge
    ip -n "$name-sw" link set br0 up
    local i=1
    for host in "${hosts[@]}"; do
        ip netns add "$name-$host"
        ip -n "$name-$host" link set lo up
        ip -n "$name-sw" link add "v-$host" type veth peer name eth0 netns "$name-$host"
        ip -n "$name-sw" link set "v-$host" master br0 up
        ip -n "$name-$host" addr add "10.231.0.$i/24" dev eth0
        ip -n "$name-$host" link set eth0 up
        i=$((i + 1))
    done
}

case $action in
    up) trap down ERR; up ;;
    down) down ;;
    *) echo "usage: hosts.sh up|down NAME" >&2; exit 2 ;;
esac
