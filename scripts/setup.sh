#!/usr/bin/env bash
# Everything tsbuild and its tests need on a fresh Debian/Ubuntu machine, as root:
# Debian packages, then `npm ci` (which compiles the TypeScript and the native helper).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  gcc libc6-dev          # the native helper (native/helper/*.c)
  libdeflate-dev libssl-dev   # its gzip subcommand's deflate and sha256 (linked statically: not needed where tsbuild only runs)
  busybox-static         # the offline base image (tsbuild bootstrap busybox)
  tar gzip bzip2 xz-utils zstd file   # archives for ADD/import and the tests that make them
  debootstrap            # the Debian base image for examples/nginx (scripts/debian-image.sh)
  attr                   # getfattr/setfattr, used by tests to check xattrs independently
  openssh-client         # ssh-agent and ssh-add serve --ssh ID=KEY files; ssh-keygen for the tests
  tmux                   # drives the terminal progress view in the tests
  chromium               # renders analyze --html's page in its test (playwright-core drives it; never downloads a browser)
  uidmap                 # newuidmap/newgidmap: rootless tsbuild maps /etc/subuid ranges (test/rootless)
  fuse-overlayfs         # rootless storage where the kernel refuses overlayfs in a user namespace (docs/rootless.md)
  libcap2-bin            # setcap: newuidmap's file capabilities in the image of test/rootless/podman.test.ts
  zsh fish               # test/cli/completion.test.ts loads `tsbuild completion zsh|fish` in each real shell
  jq                     # the seccomp profile command of docs/rootless.md (Kubernetes), run by test/rootless/podman.test.ts
  docker.io skopeo umoci podman buildah docker-registry   # the peers the interop tests and bench/ check against
  qemu-user-static binfmt-support   # RUN steps for another architecture (build --platform linux/arm64, docs/multi-platform.md)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# arm64 in apt's lists: tsbuild bootstrap busybox --platform linux/arm64 downloads busybox-static:arm64.
add_arm64=
dpkg --print-foreign-architectures | grep -qx arm64 || add_arm64=yes
if [ "${#missing[@]}" -gt 0 ] || [ -n "$add_arm64" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    [ -n "$add_arm64" ] && echo "setup: arm64 is not in dpkg's architectures (run as root, or: sudo dpkg --add-architecture arm64 && sudo apt-get update)" >&2
    [ "${#missing[@]}" -gt 0 ] && echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$add_arm64" ] && dpkg --add-architecture arm64
  apt-get update -qq
  [ "${#missing[@]}" -gt 0 ] && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU's aarch64 handler in binfmt_misc, enabled, with the F flag that Debian's qemu-user-static
# sets (the kernel opens the interpreter once, so it runs inside a build's root and a rootless
# user namespace). Without an init system nothing registers it at boot: update-binfmts mounts
# binfmt_misc on /proc/sys/fs/binfmt_misc if need be and registers it.
handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
if ! { grep -qx enabled "$handler" && grep -q '^flags: .*F' "$handler"; } 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: QEMU's aarch64 handler is not registered (run as root, or: sudo update-binfmts --enable qemu-aarch64)" >&2
    exit 1
  fi
  update-binfmts --enable qemu-aarch64
fi

npm ci --no-audit --no-fund
