#!/usr/bin/env bash
# Everything tsbuild and its tests need on a fresh Debian/Ubuntu machine, as root:
# Debian packages, then `npm ci` (which compiles the TypeScript and the native helper).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  gcc libc6-dev          # the native helper (native/helper/*.c)
  libdeflate-dev         # its gzip subcommand (linked statically: not needed where tsbuild only runs)
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
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
