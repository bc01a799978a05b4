# Sourced by the benchmark scripts: a throwaway InfluxDB 1.x on 127.0.0.1.
# Needs `die` and `influx_pid` defined by the caller.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_influx DIR: a fresh influxd with everything under DIR; sets
# influx_pid and influx_port.
start_influx() {
    local dir=$1
    mkdir -p "$dir"
    influx_port=$(free_port)
    local rpc_port
    rpc_port=$(free_port)
    cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"

[meta]
  dir = "$dir/meta"
  logging-enabled = false

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  index-version = "inmem"
  query-log-enabled = false
  # Defaults are 10m and 4h: short here so the compacted size is measured
  # within the run (they only decide when idle data is compacted).
  cache-snapshot-write-cold-duration = "1s"
  compact-full-write-cold-duration = "1s"

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = true
CONF
    influxd -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
    influx_pid=$!
    local _
    for _ in $(seq 1 150); do
        if curl -fs "http://127.0.0.1:$influx_port/ping" >/dev/null 2>&1; then
            curl -fsS -XPOST "http://127.0.0.1:$influx_port/query" \
                --data-urlencode "q=CREATE DATABASE bench" >/dev/null ||
                die "InfluxDB refused CREATE DATABASE; its log: $dir/influxd.log"
            return 0
        fi
        kill -0 "$influx_pid" 2>/dev/null || break
        sleep 0.2
    done
    cat "$dir/influxd.log" >&2
    die "influxd did not answer /ping on 127.0.0.1:$influx_port"
}

stop_influx() {
    kill -TERM "$influx_pid"
    wait "$influx_pid" || true
    influx_pid=
}

