#!/usr/bin/env bash
# Builds the fixture's all-in-one container root file system into OUTDIR/rootfs.tar: Debian
# (debootstrap minbase), PostgreSQL 15 with the fixture's database, and the fixture's Python
# server, started by docker/entrypoint. The Docker driver imports the tar (`docker import`):
# no container registry is needed. Run as root (debootstrap and chroot need it).
#
# Packages come from debootstrap's default mirror and the host's apt configuration: no mirror
# host name is written here on purpose. Staged in a folder next to OUTDIR, moved in at the end.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
guest=$repo/fixtures/image/guest
suite=bookworm
pg_version=15
packages=postgresql-$pg_version,python3,python3-psycopg2,python3-jwt,python3-cryptography,python3-cffi-backend

log() { printf '[fixture-container %(%T)T] %s\n' -1 "$*" >&2; }
# shellcheck source=../fixtures/image/rootfs.sh
source "$repo/fixtures/image/rootfs.sh"
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
[[ $EUID -eq 0 ]] || die "run as root (debootstrap and chroot need it)"
for tool in debootstrap chroot tar; do command -v "$tool" >/dev/null || die "$tool is missing (apt-get install debootstrap)"; done

mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d "$(dirname "$out")/.container-build.XXXXXX")
cleanup() {
	local m
	for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m" || true; done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start=$SECONDS

root=$work/rootfs
bootstrap_root "$suite" "$packages"
log "debootstrap done (at $((SECONDS - start)) s)"

rm -rf "$root"/usr/lib/postgresql/$pg_version/lib/llvmjit* "$root"/usr/lib/postgresql/$pg_version/lib/bitcode \
	"$root"/usr/share/{doc,man,info,locale,i18n,lintian}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
	"$root"/var/log/*.log "$root"/var/log/apt/* "$root"/debootstrap

mkdir -p "$root/host"
install_server "$guest" # rootfs.sh
install -m 755 "$here/entrypoint" "$root/usr/local/bin/entrypoint"
install -m 755 "$here/reset-database" "$root/usr/local/bin/reset-database"

# The cluster, made now so a container start does not pay for initdb. Unix socket only: with host
# networking, two containers side by side must not both want port 5432.
fixture_database "$pg_version" "$guest/schema.sql"
# The clean state, for reset-database: a template copy of the built database (made before
# fixture.conf, whose POSIX shared memory the chroot lacks).
pg_sql postgres <<<'CREATE DATABASE fixture_clean TEMPLATE fixture;' >/dev/null
install -m 600 -o "$(stat -c %u "$root$pg_data")" -g "$(stat -c %g "$root$pg_data")" \
	"$guest/postgresql.fixture.conf" "$root$pg_data/fixture.conf"
printf "\ninclude 'fixture.conf'\nlisten_addresses = ''\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n" >>"$root$pg_data/postgresql.conf"

tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
mv -f "$work/rootfs.tar" "$out/rootfs.tar"
log "done in $((SECONDS - start)) s: $(du -h "$out/rootfs.tar" | cut -f1)"
