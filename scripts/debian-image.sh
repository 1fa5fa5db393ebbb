#!/usr/bin/env bash
# Creates a Debian base image (default debian:bookworm) in the tsbuild store with debootstrap,
# from the Debian archive the host's apt sources name: the offline-friendly stand-in for
# `docker pull debian:bookworm`. The root filesystem tarball is cached in
# /var/cache/tsbuild so that later runs only import it.
#
# --arch ARCH (Debian's name: arm64, armhf, ppc64el, s390x, ...) makes the base for another
# architecture: debootstrap --foreign unpacks its packages on this machine, and the second stage
# runs their maintainer scripts inside the new root under QEMU user emulation, which needs that
# architecture's binfmt_misc handler with the F flag (docs/multi-platform.md): what
# qemu-debootstrap did, with no emulator copied into the image.
#
#   scripts/debian-image.sh [--root STORE_ROOT] [--arch ARCH] [NAME[:TAG]]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
suite=${SUITE:-bookworm}
root_args=()
tag=""
host_arch=$(dpkg --print-architecture)
arch=$host_arch
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root_args=(--root "$2"); shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    *) tag=$1; shift ;;
  esac
done
tag=${tag:-debian:$suite}
cache=${TSBUILD_CACHE:-/var/cache/tsbuild}
# -slim: made without package caches (an older cache file, made with them, is left alone).
tarball="$cache/debian-$suite-$arch-slim.tar"
# The platform (Go's names) and QEMU's name for Debian's architecture.
case "$arch" in
  amd64) platform=linux/amd64 qemu=x86_64 ;;
  arm64) platform=linux/arm64 qemu=aarch64 ;;
  armhf) platform=linux/arm/v7 qemu=arm ;;
  armel) platform=linux/arm/v5 qemu=arm ;;
  i386) platform=linux/386 qemu=i386 ;;
  ppc64el) platform=linux/ppc64le qemu=ppc64le ;;
  s390x) platform=linux/s390x qemu=s390x ;;
  riscv64) platform=linux/riscv64 qemu=riscv64 ;;
  mips64el) platform=linux/mips64le qemu=mips64el ;;
  *) echo "debian-image: unknown architecture $arch (Debian's names: amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64, mips64el)" >&2; exit 1 ;;
esac
foreign=
if [ "$arch" != "$host_arch" ] && ! { [ "$host_arch" = amd64 ] && [ "$arch" = i386 ]; }; then
  foreign=yes
  handler=/proc/sys/fs/binfmt_misc/qemu-$qemu
  if ! { grep -qx enabled "$handler" && grep -q '^flags: .*F' "$handler"; } 2>/dev/null; then
    echo "debian-image: $arch needs QEMU user emulation with the F flag: as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-$qemu (docs/multi-platform.md)" >&2
    exit 1
  fi
fi

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
  echo "debian-image: debootstrap $suite ($arch) from $mirror" >&2
  failed() {
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
  }
  if [ -z "$foreign" ]; then
    debootstrap --variant=minbase --arch="$arch" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || failed
  else
    debootstrap --foreign --variant=minbase --arch="$arch" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || failed
    chroot "$work/rootfs" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 || failed
  fi
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

node "$repo/dist/bin/tsbuild.js" import "${root_args[@]}" --platform "$platform" -m "debootstrap $suite" "$tarball" "$tag"
