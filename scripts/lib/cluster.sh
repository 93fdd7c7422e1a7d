# shellcheck shell=bash
# Sourced by scripts/cluster and scripts/chaos: free ports and waiting for a node.
# Callers define log().

# free_ports N: N distinct TCP ports on 127.0.0.1 that nothing listens on.
free_ports() {
	python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
chosen = []
for _ in range(5000):
    if len(chosen) == n:
        break
    p = random.randint(20000, 32000)
    if p in chosen:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    chosen.append(p)
if len(chosen) != n:
    sys.exit("could not find free ports")
print(" ".join(map(str, chosen)))
PY
}

# wait_ready NAME PORT PID LOG: GET /ready answers 200 within 60 s; on failure shows the
# end of LOG.
wait_ready() {
	local name=$1 port=$2 pid=$3 logfile=$4 i
	for ((i = 0; i < 600; i++)); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/ready" || true)" = 200 ]; then
			log "$name ready on port $port"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	log "$name (pid $pid, port $port) not ready; last lines of $logfile:"
	tail -n 30 "$logfile" >&2 || true
	return 1
}
