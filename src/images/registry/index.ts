/** The OCI distribution client: pull and push images between a registry and a ContentStore. */
export { pull, fetchManifest, downloadBlob, LayerTap, type PullOptions, type PullResult } from './pull.js';
export { push, pushBlob, type PushOptions, type PushResult } from './push.js';
export { listTags } from './tags.js';
export { ConnectionError, RegistryClient, RegistryError, insecureEntryHost, isInsecureHost, type ClientOptions, type RegistryResponse } from './client.js';
export {
  parseWWWAuthenticate,
  credentialsFromDockerConfig,
  defaultDockerConfigPath,
  resolveCredentials,
  repositoryScope,
  type Credentials,
  type RegistryAuth,
  type Challenge,
} from './auth.js';
export { parseRegistryRef, MANIFEST_ACCEPT, type RegistryRef } from './ref.js';
