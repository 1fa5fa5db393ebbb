import { createInterface } from 'node:readline/promises';
import { DockerConfig, type Credentials } from '../../src/registry/credentials.js';
import { registryHostname } from '../../src/registry/endpoint.js';
import { login } from '../../src/registry/login.js';
import { DEFAULT_DOMAIN } from '../../src/image/reference.js';
import { parseCommand, usageError } from '../common.js';

const spec = {
  usage: 'login [OPTIONS] [SERVER]',
  description: 'Log in to a registry (Docker Hub when SERVER is omitted); credentials go to $DOCKER_CONFIG/config.json',
  options: {
    username: { type: 'string', short: 'u' },
    password: { type: 'string', short: 'p' },
    'password-stdin': { type: 'boolean' },
    'insecure-registry': { type: 'string', multiple: true },
  },
  optionHelp: [
    '  -u, --username USER               Username',
    '  -p, --password PASS               Password (visible to other users of this machine: prefer --password-stdin)',
    '      --password-stdin              Take the password from stdin',
    '      --insecure-registry HOST      Reach HOST over plain HTTP (repeatable; loopback always is)',
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  const v = args.values;
  if (args.positionals.length > 1) throw usageError(`"tsbuild login" requires at most 1 argument. Usage: tsbuild ${spec.usage}`);
  const server = args.positionals[0] ?? DEFAULT_DOMAIN;
  const domain = registryHostname(server);

  let username = v.username?.trim();
  let password = v.password;
  if (v['password-stdin']) {
    if (password !== undefined) throw usageError('--password and --password-stdin are mutually exclusive');
    if (!username) throw usageError('Must provide --username with --password-stdin');
    password = (await readStdin()).replace(/\r?\n$/, '');
  } else if (password !== undefined) {
    process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (!username || password === undefined) {
    if (!process.stdin.isTTY) throw usageError('Cannot perform an interactive login from a non TTY device');
    username ||= (await ask(`Username: `)).trim();
    if (password === undefined) password = await askHidden('Password: ');
  }
  if (!username) throw usageError('Username is required');
  if (password === '') throw usageError('Password is required');
  const creds: Credentials = { username, password };

  await login(domain, creds, { insecureRegistries: v['insecure-registry'] ?? [] });
  const config = await DockerConfig.load();
  const where = config.describeStorage(domain);
  await config.set(domain, creds);
  if (where === config.file) process.stderr.write(`WARNING! Your password will be stored unencrypted in ${config.file}.\n`);
  process.stdout.write('Login Succeeded\n');
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

/** Reads a line from the terminal without echoing it. */
async function askHidden(question: string): Promise<string> {
  process.stdout.write(question);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  try {
    let typed = '';
    for await (const chunk of stdin as AsyncIterable<Buffer>) {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return typed;
        if (ch === '\u0003') throw usageError('login interrupted');
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    }
    return typed;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stdout.write('\n');
  }
}
