#!/usr/bin/env bash
# Runs the segfs mount tests (pytest, system python, as root).
#
# usage: tests/mount/run.sh [passthrough|fallback|tmpfs] [PYTEST ARGS...]
#
#   passthrough  segfs with its default data path (the default)
#   fallback     segfs -o nopassthrough: cached FUSE I/O
#   tmpfs        the reference: a plain tmpfs with lists/; the segfs-only
#                tests skip.  Every other test must pass here too.
#
# Environment, all optional: SEGFS (daemon binary, default build/segfs),
# SEGFS_OPTS (extra -o options, added to the mode's), SEGFS_CLIENTS (the
# built C clients, default build/tests/clients, else compiled on the fly),
# SEGFS_KEEP=1 (keep the temp dir with the daemon logs).
#
# Examples:
#   tests/mount/run.sh                        # passthrough
#   tests/mount/run.sh fallback -k mmap -v    # fallback, mmap tests only
#   tests/mount/run.sh tmpfs                  # check expectations on tmpfs
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mode=passthrough
case "${1:-}" in
passthrough|fallback|tmpfs) mode=$1; shift ;;
esac

export SEGFS=${SEGFS:-$top/build/segfs}
if [ -z "${SEGFS_CLIENTS:-}" ] && [ -d "$top/build/tests/clients" ]; then
	export SEGFS_CLIENTS=$top/build/tests/clients
fi
case $mode in
passthrough)
	export SEGFS_MODE=passthrough
	unset SEGFS_REFERENCE ;;
fallback)
	export SEGFS_MODE=fallback
	export SEGFS_OPTS=nopassthrough${SEGFS_OPTS:+,$SEGFS_OPTS}
	unset SEGFS_REFERENCE ;;
tmpfs)
	export SEGFS_REFERENCE=tmpfs ;;
esac

# The suite bounds every test itself; this outer limit only guards against
# a harness bug.  -k 10: SIGKILL if pytest ignores the SIGTERM.
exec timeout -k 10 600 /usr/bin/python3 -m pytest "$top/tests/mount" "$@"
