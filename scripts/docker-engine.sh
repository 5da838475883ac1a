#!/usr/bin/env bash
# Starts (start) or stops (stop) a Docker engine of its own for the Docker driver's tests: Debian's
# docker.io, its own data root, exec root and socket, no iptables and no bridge (containers use
# host networking, as on these machines). Prints the DOCKER_HOST to use. Run as root.
set -euo pipefail
base=${STACK_EMULATOR_DOCKER_DIR:-/var/lib/stack-emulator-docker}
sock=/run/stack-emulator-docker.sock
case ${1:-} in
start)
	command -v dockerd >/dev/null || apt-get install -y -qq --no-install-recommends docker.io >/dev/null
	mkdir -p "$base/data" "$base/exec"
	if [[ -f $base/dockerd.pid ]] && kill -0 "$(cat "$base/dockerd.pid")" 2>/dev/null; then echo "unix://$sock"; exit 0; fi
	setsid dockerd --iptables=false --bridge=none --data-root "$base/data" --exec-root "$base/exec" \
		--pidfile "$base/dockerd.pid" --host "unix://$sock" >"$base/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 100); do
		[[ -S $sock ]] && DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 && { echo "unix://$sock"; exit 0; }
		sleep 0.2
	done
	tail -n 20 "$base/dockerd.log" >&2
	echo "dockerd did not start" >&2
	exit 1
	;;
stop)
	[[ -f $base/dockerd.pid ]] || exit 0
	pid=$(cat "$base/dockerd.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
	kill -9 "$pid" 2>/dev/null || true
	;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
