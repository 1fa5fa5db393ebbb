// docker buildx's syntax for the build-wide flags that say what RUN steps may reach: --network,
// --add-host and --allow, parsed once into the typed values of the BuildRequest (request.ts), so
// that the builder never checks a string again. (--secret and --ssh are parsed beside their
// sources: secrets.ts, ssh.ts.) Each mistake is an InvalidInputError naming the flag and the value.
import { isIP } from 'node:net';
import { InvalidInputError } from '../errors.js';
import type { BuildRequest, Entitlement, ExtraHost } from './request.js';

export type BuildNetwork = NonNullable<BuildRequest['network']>;

const NETWORKS: readonly BuildNetwork[] = ['default', 'none', 'host'];
const ENTITLEMENTS: readonly Entitlement[] = ['network.host', 'security.insecure'];

/** `--network default|none|host`: buildx refuses any other mode for a build (bridge, a named network). */
export function parseNetworkFlag(value: string): BuildNetwork {
  if (!(NETWORKS as readonly string[]).includes(value))
    throw new InvalidInputError(`invalid --network ${JSON.stringify(value)}: use default, none or host`);
  return value as BuildNetwork;
}

/**
 * `--add-host NAME:IP` or `NAME=IP` (buildx splits at the first `=`, else at the first `:`, so
 * `h:2001:db8::1` is fine), an IPv6 address optionally in brackets; several, comma-separated, in
 * one flag (buildx's flag is a string slice). The IP must be an IPv4 or IPv6 address, as docker
 * checks it. Stricter than docker: a name holding whitespace or `#` would write a different
 * /etc/hosts line than the one asked for, so it is refused; `host-gateway`, which names the
 * bridge gateway of a daemon, has no meaning here (RUN shares the host's network or has none).
 */
export function parseAddHostFlag(value: string): ExtraHost[] {
  return value.split(',').map((spec) => {
    const bad = (why: string) => new InvalidInputError(`invalid --add-host ${JSON.stringify(spec)}: ${why}`);
    const sep = spec.includes('=') ? spec.indexOf('=') : spec.indexOf(':');
    if (sep < 0) throw bad('want NAME:IP or NAME=IP');
    const name = spec.slice(0, sep);
    let ip = spec.slice(sep + 1);
    if (name === '') throw bad('the host name is empty');
    if (/[\s#]/.test(name)) throw bad('a host name cannot hold whitespace or #');
    if (ip === 'host-gateway') throw bad('host-gateway is not supported: give the address (RUN steps share the host network)');
    if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    // Node accepts a zone (`fe80::1%eth0`) that Go's net.ParseIP, which docker uses, refuses.
    if (isIP(ip) === 0 || ip.includes('%')) throw bad(`${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
    return { name, ip };
  });
}

/** `--allow network.host|security.insecure`, several comma-separated in one flag, as buildx takes them. */
export function parseAllowFlag(value: string): Entitlement[] {
  return value.split(',').map((e) => {
    if (!(ENTITLEMENTS as readonly string[]).includes(e))
      throw new InvalidInputError(`invalid --allow ${JSON.stringify(e)}: use network.host or security.insecure`);
    return e as Entitlement;
  });
}
