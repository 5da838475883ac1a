#!/usr/bin/env bash
# Starts (start) or stops (stop) a Docker engine of its own for the Docker driver's tests: Debian's
# docker.io, its own data root, exec root and socket, no iptables. Prints the DOCKER_HOST to use.
# Run as root.
#   start|stop         no bridge: containers use host networking, as on machines without one
#   start|stop bridge  a second engine on a bridge of its own (se-docker0, not docker0), its
#                      ports published on 127.0.0.1 by the userland proxy (no iptables needed)
set -euo pipefail
mode=${2:-host}
base=${STACK_EMULATOR_DOCKER_DIR:-/var/lib/stack-emulator-docker}
sock=/run/stack-emulator-docker.sock
network=(--bridge=none)
if [[ $mode == bridge ]]; then
	base=$base-bridge
	sock=/run/stack-emulator-docker-bridge.sock
	bridge=se-docker0
	network=(--bridge="$bridge" --ip6tables=false --userland-proxy=true)
elif [[ $mode != host ]]; then
	echo "usage: $0 start|stop [bridge]" >&2; exit 2
fi
case ${1:-} in
start)
	command -v dockerd >/dev/null || apt-get install -y -qq --no-install-recommends docker.io >/dev/null
	mkdir -p "$base/data" "$base/exec"
	if [[ -f $base/dockerd.pid ]] && kill -0 "$(cat "$base/dockerd.pid")" 2>/dev/null; then echo "unix://$sock"; exit 0; fi
	if [[ $mode == bridge ]] && ! ip link show "$bridge" >/dev/null 2>&1; then
		# A private range, unlikely to clash with docker0 (172.17/16) or a host's own networks.
		ip link add "$bridge" type bridge
		ip addr add 172.31.254.1/24 dev "$bridge"
		ip link set "$bridge" up
	fi
	setsid dockerd --iptables=false "${network[@]}" --data-root "$base/data" --exec-root "$base/exec" \
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
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	kill -9 "$pid" 2>/dev/null || true
	if [[ $mode == bridge ]]; then ip link del "$bridge" 2>/dev/null || true; fi
	;;
*) echo "usage: $0 start|stop [bridge]" >&2; exit 2 ;;
esac
