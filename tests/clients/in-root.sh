#!/bin/sh
# in-root.sh ROOT PROGRAM [ARG...]: runs PROGRAM inside the Debian root ROOT
# as if it were installed on the host. In a private mount namespace (nothing
# stays mounted on the host), /proc, /dev, /sys, /tmp, $HOME, the working
# directory and every directory named in CORESTUB_CLIENT_BINDS
# (colon-separated: the fixtures, the cargo target dir...) appear at their
# host paths inside ROOT; PROGRAM then starts in the caller's working
# directory. The network is the host's (LLDB reaches corestub on
# 127.0.0.1), and so are open descriptors (corestub's hand-off socket to
# GDB's `target remote |` child). Copied into the clients cache by
# trixie.sh; needs root.
set -eu
if [ "${CORESTUB_IN_ROOT_NS:-}" != 1 ]; then
  CORESTUB_IN_ROOT_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
unset CORESTUB_IN_ROOT_NS
root=$1
prog=$2
shift 2
bind() {
  case $1 in /*) ;; *) return 0 ;; esac
  [ -d "$1" ] || return 0
  mkdir -p "$root$1"
  mount --rbind "$1" "$root$1"
}
bind /proc
bind /dev
bind /sys
bind /tmp
bind "${HOME:-/root}"
old_ifs=$IFS
IFS=:
for d in ${CORESTUB_CLIENT_BINDS:-}; do
  IFS=$old_ifs
  bind "$d"
done
IFS=$old_ifs
bind "$PWD"
# chroot(1) changes to /: go back to the caller's directory inside.
exec chroot "$root" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$PWD" "$prog" "$@"
