# Sourced by scripts/create_cost.sh and scripts/create_instructions.sh: the fleet their
# creates go to, and the wait for Shoal to know it whole. Reads $engines, $per, $port_base
# and $api; appends what it starts to $pids (killed by the caller's EXIT trap).

# start_fleet BIN DIR: `BIN sim` with $engines engines of $per containers from $port_base,
# their addresses in DIR/addrs once all listen. Sets $sim.
start_fleet() {
    "$1" sim --engines "$engines" --port-base "$port_base" --containers-per-engine "$per" \
        --addrs-file "$2/addrs" >/dev/null 2>"$2/sim.log" &
    sim=$!
    pids+=("$sim")
    until [[ -f $2/addrs ]] && (($(wc -w <"$2/addrs") >= engines)); do sleep 0.2; done
}

# wait_known SIDE DIR PID: until the Shoal on $api (process PID, its log in DIR/manage.log)
# lists every container of the fleet with its reservation known; creates are measured after.
wait_known() {
    until curl -sf "127.0.0.1:$api/shoal/api/cluster" | python3 -c '
import json, sys
nodes = json.load(sys.stdin)["nodes"]
ok = len(nodes) == int(sys.argv[1]) and all(
    n["containers"]["total"] >= int(sys.argv[2]) and n["containers"]["unreserved"] == 0 for n in nodes)
sys.exit(0 if ok else 1)' "$engines" "$per" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || { echo "$1: shoal exited, see $2/manage.log" >&2; exit 1; }
        sleep 1
    done
}
