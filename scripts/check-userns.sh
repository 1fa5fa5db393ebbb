#!/usr/bin/env bash
# Whether an ordinary user may create a user namespace on this machine, which rootless tsbuild
# (docs/rootless.md) and test/rootless need. Silent and 0 when it may; otherwise one line naming
# the setting that refuses it, and 1. .ci/run calls it first, so CI fails before it installs
# anything rather than in the middle of the tests.
set -uo pipefail

refuse() {
  echo "check-userns: unprivileged user namespaces are disabled: $1 (rootless tsbuild and test/rootless need them)" >&2
  exit 1
}

setting() { cat "/proc/sys/$1" 2>/dev/null; }

# Each distribution's switch, most specific first; each names the sysctl to set.
[ "$(setting kernel/unprivileged_userns_clone)" = 0 ] && refuse 'kernel.unprivileged_userns_clone=0; as root: sysctl -w kernel.unprivileged_userns_clone=1'
[ "$(setting user/max_user_namespaces)" = 0 ] && refuse 'user.max_user_namespaces=0; as root: sysctl -w user.max_user_namespaces=15000'
[ "$(setting kernel/apparmor_restrict_unprivileged_userns)" = 1 ] &&
  refuse 'AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns=1); as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0'

# Then the real thing, as an ordinary user: nobody when run as root.
if [ "$(id -u)" -eq 0 ]; then
  try=(setpriv --reuid=65534 --regid=65534 --clear-groups unshare --user --map-root-user true)
else
  try=(unshare --user --map-root-user true)
fi
if ! out=$("${try[@]}" 2>&1); then
  refuse "\`unshare -Ur true\` as an ordinary user failed (${out//$'\n'/; }); check the sysctls user.max_user_namespaces, kernel.unprivileged_userns_clone and kernel.apparmor_restrict_unprivileged_userns"
fi
