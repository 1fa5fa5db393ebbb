#!/usr/bin/env bash
# Creates a Debian base image (default debian:bookworm) in the tsbuild store with debootstrap,
# from the Debian archive the host's apt sources name: the offline-friendly stand-in for
# `docker pull debian:bookworm`. The root filesystem tarball is cached in
# /var/cache/tsbuild so that later runs only import it.
#
#   scripts/debian-image.sh [--root STORE_ROOT] [NAME[:TAG]]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
suite=${SUITE:-bookworm}
root_args=()
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root_args=(--root "$2"); shift 2 ;;
    *) tag=$1; shift ;;
  esac
done
tag=${tag:-debian:$suite}
cache=${TSBUILD_CACHE:-/var/cache/tsbuild}
# -slim: made without package caches (an older cache file, made with them, is left alone).
tarball="$cache/debian-$suite-$(dpkg --print-architecture)-slim.tar"

if ! command -v debootstrap >/dev/null; then
  echo "debian-image: debootstrap is missing: apt-get install -y debootstrap" >&2
  exit 1
fi

if [ ! -s "$tarball" ]; then
  mirror=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -n1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  work=$(mktemp -d /var/tmp/tsbuild-debootstrap-XXXXXX)
  cleanup() {
    # debootstrap mounts /proc and /sys inside the target; never rm -rf across a mount.
    awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
  }
  trap cleanup EXIT
  echo "debian-image: debootstrap $suite from $mirror" >&2
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
  }
  # What Docker's official debian images leave out: package lists, downloaded .deb files and
  # apt's binary caches. And what they add: docker-clean, the APT hook that deletes downloaded
  # packages after each install (the text of debuerreotype's debuerreotype-minimizing-config,
  # which builds those images), so that an image's own `apt-get install` leaves no .deb behind.
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/log/"*.log
  find "$work/rootfs/var/cache/apt/archives" -name '*.deb' -delete
  cat > "$work/rootfs/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
  mkdir -p "$cache"
  tar --numeric-owner --xattrs --sort=name -C "$work/rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

node "$repo/dist/bin/tsbuild.js" import "${root_args[@]}" -m "debootstrap $suite" "$tarball" "$tag"
