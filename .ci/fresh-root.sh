#!/usr/bin/env bash
# Runs commands in a clean clone of this project inside a fresh Debian root, as a newcomer's machine
# would: nothing installed but a minimal Debian, this machine's CA certificates (its package proxies
# present them) and, depending on the pip mode, this machine's pip settings.
#
# Usage: .ci/fresh-root.sh MODE NAME 'command 1' ['command 2' ...]      (as root)
#   MODE local:  this machine's pip settings and local wheel folders (the local CPU torch wheel)
#   MODE public: the public package registry only (its default torch is the CUDA build)
#   NAME: a label for the root and its logs, under $CI_WORK (default /tmp/attnmap-ci)
#
# The base root is made once with debootstrap from the apt source this machine is configured with
# and kept as a tarball; each call unpacks a new copy of it. Every command's output goes to
# $CI_WORK/NAME/cmdN.log; a failing command prints its log's tail and stops the rest (exit 1).
set -uo pipefail
# Everything runs in a private mount namespace: the root's /proc, /sys and /dev binds never reach
# the host's mount table (no propagation back through shared mounts), and they vanish with the
# namespace even if this script is killed.
if [ -z "${ATTNMAP_FRESH_ROOT_NS:-}" ]; then
  export ATTNMAP_FRESH_ROOT_NS=1
  exec unshare --mount --propagation private bash "$0" "$@"
fi
mode=${1:?usage: fresh-root.sh local|public NAME CMD...}
name=${2:?usage: fresh-root.sh local|public NAME CMD...}
shift 2
project=$(cd "$(dirname "$0")/.." && pwd)
work=${CI_WORK:-/tmp/attnmap-ci}
base=$work/debian-base.tar
root=$work/$name/root
logs=$work/$name
mkdir -p "$logs" && rm -f "$logs"/cmd*.log

die() { echo "fresh-root[$name]: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
# findmnt escapes unusual characters, which would hide a mount from release_root below.
[[ "$root" =~ ^[A-Za-z0-9._/-]+$ ]] || die "CI_WORK and NAME may hold only letters, digits and ._/- ('$root')"

make_base() {
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  } || die "cannot install debootstrap"
  local src=/etc/apt/sources.list.d/debian.sources tmp=$work/debian-base.tmp
  [ -f "$src" ] || die "no $src: cannot tell which apt source to bootstrap from"
  local mirror suite
  mirror=$(awk '/^URIs:/{print $2; exit}' "$src")
  suite=$(. /etc/os-release; echo "$VERSION_CODENAME")
  rm -rf --one-file-system "$tmp"
  echo "fresh-root: debootstrap $suite from $mirror"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$tmp" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log"; die "debootstrap failed (log $work/debootstrap.log)"; }
  cp "$src" "$tmp/etc/apt/sources.list.d/"
  [ -f "$tmp/etc/apt/sources.list" ] && : >"$tmp/etc/apt/sources.list"
  tar -C "$tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base" && rm -rf --one-file-system "$tmp"
}

# Unmounts everything under the root; removing the root while /dev or /sys is still bound into it
# would delete the host's, so the tree is only removed once nothing is mounted there.
release_root() {
  local m
  findmnt -rn -o TARGET | grep -F "$root/" | sort -r | while IFS= read -r m; do umount -l "$m" 2>/dev/null; done
  if findmnt -rn -o TARGET | grep -qF "$root/"; then
    echo "fresh-root[$name]: something is still mounted under $root; leaving it in place" >&2
    return 1
  fi
}

[ -f "$base" ] || make_base
release_root || exit 1
rm -rf --one-file-system "$root" && mkdir -p "$root" && tar -C "$root" -xf "$base" || die "cannot unpack $base"
trap release_root EXIT
mount -t proc proc "$root/proc" && mount --rbind /sys "$root/sys" && mount --rbind /dev "$root/dev" ||
  die "cannot mount /proc, /sys, /dev into the root"
cp /etc/resolv.conf "$root/etc/" 2>/dev/null
# debootstrap leaves /etc/hosts to the installer; every installed Debian has one, and without it
# "localhost" does not resolve (selenium reaches chromedriver at localhost).
[ -e "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# This machine's own CA certificates, which its package proxies present, as on any host here.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/"   # points pip at the system CA bundle

pipenv=()
case "$mode" in
  local)
    [ -d /etc/xdg/pip ] && mkdir -p "$root/etc/xdg" && cp -r /etc/xdg/pip "$root/etc/xdg/"
    [ -d /root/.config/pip ] && mkdir -p "$root/root/.config" && cp -r /root/.config/pip "$root/root/.config/"
    while IFS= read -r v; do pipenv+=("$v"); done < <(env | grep -E '^(PIP_|SSL_CERT|REQUESTS_CA)')
    for d in /opt/wheels /opt/pypi /opt/pypi-more; do
      [ -d "$d" ] && mkdir -p "$root$d" && mount --bind -o ro "$d" "$root$d"
    done ;;
  public)
    while IFS= read -r v; do pipenv+=("$v"); done < <(env | grep -E '^(PIP_CERT|SSL_CERT|REQUESTS_CA)') ;;
  *) die "mode '$mode' is neither local nor public" ;;
esac

git clone -q "$project" "$root/root/project" || die "cannot clone $project"

i=0
for cmd in "$@"; do
  i=$((i + 1)); t0=$(date +%s)
  echo "fresh-root[$name]: \$ $cmd"
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI=true ATTNMAP_WERROR="${ATTNMAP_WERROR:-OFF}" "${pipenv[@]}" bash -c "cd /root/project && $cmd" >"$logs/cmd$i.log" 2>&1 </dev/null
  rc=$?; secs=$(( $(date +%s) - t0 ))
  echo "fresh-root[$name]: '$cmd' exited $rc after ${secs}s (log $logs/cmd$i.log)"
  if [ $rc -ne 0 ]; then
    echo "---- last 60 lines of $logs/cmd$i.log ----"
    tail -n 60 "$logs/cmd$i.log" | grep -av "WARNING: Location 'file://"
    exit 1
  fi
  tail -n "${CI_TAIL_LINES:-8}" "$logs/cmd$i.log" | grep -av "WARNING: Location 'file://" | sed 's/^/  | /'
done
echo "fresh-root[$name]: disk used by the root: $(du -sh --one-file-system --exclude="$root/opt/*" "$root" 2>/dev/null | cut -f1)"
if [ "${CI_KEEP_ROOT:-0}" != 1 ]; then release_root && rm -rf --one-file-system "$root"; fi
