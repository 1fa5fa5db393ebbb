// The build flags that say what RUN steps may reach, parsed as docker buildx parses them:
// --secret (src/builder/secrets.ts), --ssh (ssh.ts), --network, --add-host and --allow
// (request-flags.ts). Every accepted form, and one clear error for each mistake. Pure: no files,
// no processes, any user.
import { InvalidInputError } from '../../../src/errors.js';
import { parseAddHostFlag, parseAllowFlag, parseNetworkFlag } from '../../../src/builder/request-flags.js';
import { parseSecretFlag } from '../../../src/builder/secrets.js';
import { keyProblem } from '../../../src/builder/ssh-agent.js';
import { parseSshFlag } from '../../../src/builder/ssh.js';

function refused(f: () => unknown, message: RegExp): void {
  expect(f).toThrow(InvalidInputError);
  expect(f).toThrow(message);
}

describe('--secret', () => {
  test('id with src, source, env, and an id alone', () => {
    expect(parseSecretFlag('id=aws,src=/home/me/.aws/credentials')).toEqual({ id: 'aws', src: '/home/me/.aws/credentials' });
    expect(parseSecretFlag('id=aws,source=creds.txt')).toEqual({ id: 'aws', src: 'creds.txt' });
    expect(parseSecretFlag('id=tok,env=API_TOKEN')).toEqual({ id: 'tok', env: 'API_TOKEN' });
    // An ID alone: Secrets decides between the variable and the file named ID, as buildx does.
    expect(parseSecretFlag('id=API_TOKEN')).toEqual({ id: 'API_TOKEN' });
  });

  test('type=file and type=env: src names the variable with type=env; each defaults to the id', () => {
    expect(parseSecretFlag('type=env,id=tok,src=API_KEY')).toEqual({ id: 'tok', env: 'API_KEY' });
    expect(parseSecretFlag('type=env,id=tok,source=API_KEY')).toEqual({ id: 'tok', env: 'API_KEY' });
    expect(parseSecretFlag('type=env,id=tok,env=API_KEY')).toEqual({ id: 'tok', env: 'API_KEY' });
    expect(parseSecretFlag('type=env,id=tok')).toEqual({ id: 'tok', env: 'tok' });
    expect(parseSecretFlag('type=file,id=aws,src=f')).toEqual({ id: 'aws', src: 'f' });
    expect(parseSecretFlag('type=file,id=aws')).toEqual({ id: 'aws', src: 'aws' });
  });

  test('keys are case-insensitive, fields in any order, values kept as written', () => {
    expect(parseSecretFlag('SRC=/a/B.txt,ID=MyId')).toEqual({ id: 'MyId', src: '/a/B.txt' });
    expect(parseSecretFlag('id=a=b,src=x=y')).toEqual({ id: 'a=b', src: 'x=y' });
  });

  test('a quoted field may hold commas and quotes (CSV, as buildx reads the flag)', () => {
    expect(parseSecretFlag('id=k,"src=/tmp/a,b"')).toEqual({ id: 'k', src: '/tmp/a,b' });
    expect(parseSecretFlag('"id=say ""hi""",src=f')).toEqual({ id: 'say "hi"', src: 'f' });
  });

  test('each mistake is one error naming the flag and the value', () => {
    refused(() => parseSecretFlag('bogus'), /^invalid --secret "bogus": "bogus" is not KEY=VALUE \(want id=ID/);
    refused(() => parseSecretFlag('src=/a'), /^invalid --secret "src=\/a": id=ID is required/);
    refused(() => parseSecretFlag('id=,src=/a'), /id=ID is required/);
    refused(() => parseSecretFlag(''), /"" is not KEY=VALUE/);
    refused(() => parseSecretFlag('id=a,type=ssh'), /unsupported type "ssh": use file or env/);
    refused(() => parseSecretFlag('id=a,target=/x'), /unknown key "target"/);
    refused(() => parseSecretFlag('id=a,src='), /src is empty/);
    refused(() => parseSecretFlag('id=a,env='), /env is empty/);
    refused(() => parseSecretFlag('id=a,src=f,env=V'), /give src=FILE or env=VAR, not both/);
    refused(() => parseSecretFlag('id=a,type=file,env=V'), /type=file reads src=FILE, not env/);
    refused(() => parseSecretFlag('id=a,"src=f'), /unterminated quote/);
    refused(() => parseSecretFlag('id=a,"src=f"x'), /text after a closing quote/);
    refused(() => parseSecretFlag('id=a,src=f"x'), /a quote inside an unquoted field/);
  });
});

describe('--ssh', () => {
  test('default, default=SOCKET, ID=PATH and ID=KEY,KEY', () => {
    expect(parseSshFlag('default')).toEqual({ id: 'default', paths: [] });
    expect(parseSshFlag('default=/run/agent.sock')).toEqual({ id: 'default', paths: ['/run/agent.sock'] });
    expect(parseSshFlag('gitlab=/home/me/.ssh/id_ed25519')).toEqual({ id: 'gitlab', paths: ['/home/me/.ssh/id_ed25519'] });
    expect(parseSshFlag('deploy=k1,./k2')).toEqual({ id: 'deploy', paths: ['k1', './k2'] });
    // Any ID without paths means $SSH_AUTH_SOCK, as in BuildKit.
    expect(parseSshFlag('mykey')).toEqual({ id: 'mykey', paths: [] });
  });

  test('`default=$SSH_AUTH_SOCK` with the variable unset, and an empty ID, are what BuildKit makes of them', () => {
    expect(parseSshFlag('default=')).toEqual({ id: 'default', paths: [] });
    expect(parseSshFlag('=/run/agent.sock')).toEqual({ id: 'default', paths: ['/run/agent.sock'] });
  });

  test('an empty path among several is an error', () => {
    refused(() => parseSshFlag('a=k1,,k2'), /^invalid --ssh "a=k1,,k2": an empty path \(want default\|ID\[=SOCKET\|KEY/);
    refused(() => parseSshFlag('a=k1,'), /an empty path/);
  });
});

describe('--network', () => {
  test('default, none and host', () => {
    for (const n of ['default', 'none', 'host']) expect(parseNetworkFlag(n)).toBe(n);
  });

  test('any other mode is refused', () => {
    refused(() => parseNetworkFlag('bridge'), /^invalid --network "bridge": use default, none or host$/);
    refused(() => parseNetworkFlag('Host'), /invalid --network "Host"/);
    refused(() => parseNetworkFlag(''), /invalid --network ""/);
  });
});

describe('--add-host', () => {
  test('NAME:IP and NAME=IP, IPv4 and IPv6, bracketed or not', () => {
    expect(parseAddHostFlag('db:10.0.0.5')).toEqual([{ name: 'db', ip: '10.0.0.5' }]);
    expect(parseAddHostFlag('db=10.0.0.5')).toEqual([{ name: 'db', ip: '10.0.0.5' }]);
    expect(parseAddHostFlag('v6:2001:db8::1')).toEqual([{ name: 'v6', ip: '2001:db8::1' }]);
    expect(parseAddHostFlag('v6=2001:4860:4860::8888')).toEqual([{ name: 'v6', ip: '2001:4860:4860::8888' }]);
    expect(parseAddHostFlag('v6=[::1]')).toEqual([{ name: 'v6', ip: '::1' }]);
    expect(parseAddHostFlag('v4:[127.0.0.1]')).toEqual([{ name: 'v4', ip: '127.0.0.1' }]);
    expect(parseAddHostFlag('my_host.example:::ffff:10.1.2.3')).toEqual([{ name: 'my_host.example', ip: '::ffff:10.1.2.3' }]);
  });

  test('several in one flag, comma-separated, as buildx takes them', () => {
    expect(parseAddHostFlag('a:1.2.3.4,b=::2')).toEqual([
      { name: 'a', ip: '1.2.3.4' },
      { name: 'b', ip: '::2' },
    ]);
  });

  test('a missing separator, name or address, or one that is not an IP, is refused', () => {
    refused(() => parseAddHostFlag('nohost'), /^invalid --add-host "nohost": want NAME:IP or NAME=IP$/);
    refused(() => parseAddHostFlag(':1.2.3.4'), /the host name is empty/);
    refused(() => parseAddHostFlag('h:'), /"" is not an IPv4 or IPv6 address/);
    refused(() => parseAddHostFlag('h:example.com'), /"example.com" is not an IPv4 or IPv6 address/);
    refused(() => parseAddHostFlag('h:1.2.3'), /"1.2.3" is not an IPv4/);
    refused(() => parseAddHostFlag('h:256.1.1.1'), /is not an IPv4/);
    refused(() => parseAddHostFlag('h=fe80::1%eth0'), /"fe80::1%eth0" is not an IPv4 or IPv6 address/);
    refused(() => parseAddHostFlag('a b:1.2.3.4'), /cannot hold whitespace or #/);
    refused(() => parseAddHostFlag('h:host-gateway'), /host-gateway is not supported/);
    refused(() => parseAddHostFlag('a:1.2.3.4,bad'), /^invalid --add-host "bad"/);
  });
});

describe('--allow', () => {
  test('network.host and security.insecure, one or several per flag', () => {
    expect(parseAllowFlag('network.host')).toEqual(['network.host']);
    expect(parseAllowFlag('security.insecure')).toEqual(['security.insecure']);
    expect(parseAllowFlag('network.host,security.insecure')).toEqual(['network.host', 'security.insecure']);
  });

  test('anything else is refused', () => {
    refused(() => parseAllowFlag('frob'), /^invalid --allow "frob": use network.host or security.insecure$/);
    refused(() => parseAllowFlag('network.host,'), /invalid --allow ""/);
  });
});

describe('private key files for --ssh ID=KEY', () => {
  // Headers and bodies of the formats ssh-keygen writes; the key bytes themselves do not matter.
  const openssh = (cipher: string) => {
    const magic = Buffer.from('openssh-key-v1\0', 'latin1');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(cipher.length);
    const body = Buffer.concat([magic, len, Buffer.from(cipher), Buffer.alloc(32)]).toString('base64');
    return Buffer.from(`-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\n`);
  };

  test('an unencrypted key is served; an encrypted one is refused, saying why', () => {
    expect(keyProblem(openssh('none'))).toBeUndefined();
    expect(keyProblem(Buffer.from('-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n'))).toBeUndefined();
    expect(keyProblem(Buffer.from('-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n'))).toBeUndefined();
    expect(keyProblem(openssh('aes256-ctr'))).toMatch(/^is encrypted: tsbuild cannot ask for its passphrase/);
    expect(keyProblem(Buffer.from('-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIE\n'))).toMatch(
      /is encrypted/,
    );
    expect(keyProblem(Buffer.from('-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n'))).toMatch(
      /is encrypted/,
    );
  });

  test('a file that is no key is refused', () => {
    expect(keyProblem(Buffer.from('ssh-ed25519 AAAAC3Nza me@host\n'))).toBe('is neither a private key nor a socket');
    expect(keyProblem(Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n'))).toBe(
      'is not a valid OpenSSH private key',
    );
  });
});
