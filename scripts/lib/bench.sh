# shellcheck shell=bash
# Sourced by the benchmark scripts (bench-compare, bench-metrics, bench-todos,
# count-metrics-cost): a node on embedded backends, a free port, waiting for a server.

# embedded_node DIR: environment for a `floodgate` node on SQLite in DIR and nothing else,
# whatever the developer's shell has set for real backends or trace export.
embedded_node() {
	export DATABASE_URL="sqlite://$1/bench.db"
	export FLOODGATE_LOG_FORMAT=text RUST_LOG=warn
	unset REDIS_URL FLOODGATE_REDIS_URL KAFKA_BROKERS KAFKA_BOOTSTRAP_SERVERS \
		FLOODGATE_KAFKA_BROKERS FLOODGATE_DATABASE_URL OTEL_EXPORTER_OTLP_ENDPOINT
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for URL SECONDS: succeeds once URL answers 2xx, fails after SECONDS.
wait_for() {
	local deadline=$((SECONDS + $2))
	until curl -sf -o /dev/null "$1" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
