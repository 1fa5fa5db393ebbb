// The registry side of tsbuild: a client for the distribution API (src/registry/client.ts) and
// the two operations that connect it to the store.
export { Registry, Repository, withQuery, type FetchedManifest, type RegistryOptions } from './client.js';
export { openRemoteImage, pullImage, PullError, type PullOptions, type PullResult, type RemoteImage } from './pull.js';
export { pushImage, PushError, type PushOptions, type PushResult, type PushedLayer, type LayerOutcome } from './push.js';
export { login, type LoginResult } from './login.js';
export { DockerConfig, dockerConfigDir, authKey, type Credentials, type CredentialSource } from './credentials.js';
export { endpointFor, type Endpoint } from './endpoint.js';
export { parsePlatform, formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
export { MediaType, parseManifest, serializeIndex, serializeImageManifest, type Descriptor, type Manifest } from '../image/manifest.js';
export type { BlobRecord } from '../store/distribution.js';
export { RegistryError, UnauthorizedError } from './errors.js';
export { TransportError } from '../http/errors.js';
export type { LayerCompression } from './compress.js';
