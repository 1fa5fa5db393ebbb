import { DockerConfig, authKey } from '../../src/registry/credentials.js';
import { registryHostname } from '../../src/registry/endpoint.js';
import { DEFAULT_DOMAIN } from '../../src/image/reference.js';
import { parseCommand, usageError } from '../common.js';

const spec = {
  usage: 'logout [SERVER]',
  description: 'Remove the credentials kept for a registry (Docker Hub when SERVER is omitted)',
  options: {},
  optionHelp: [],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  if (args.positionals.length > 1) throw usageError(`"tsbuild logout" requires at most 1 argument. Usage: tsbuild ${spec.usage}`);
  const domain = registryHostname(args.positionals[0] ?? DEFAULT_DOMAIN);
  const config = await DockerConfig.load();
  if (await config.remove(domain)) process.stdout.write(`Removing login credentials for ${authKey(domain)}\n`);
  else process.stdout.write(`Not logged in to ${authKey(domain)}\n`);
  return 0;
}
