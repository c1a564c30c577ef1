/**
 * The AWS profile `s3x` runs under, read from the AWS shared config and credentials files (the
 * SDK's own loader: `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/config`
 * and `~/.aws/credentials`; `[profile NAME]` sections, `[services NAME]` sections). The profile is
 * the one `--profile` names, else `AWS_PROFILE`, else `default`. A profile named by `--profile` or
 * `AWS_PROFILE` must exist ({@link ProfileNotFoundError}, as `aws` refuses an unknown profile);
 * `default` may be missing.
 *
 * What is read here is what the store's settings do not otherwise say: the region (`region`), the
 * S3 endpoint (`endpoint_url` of the profile's `services` section for `s3`, else the profile's
 * `endpoint_url`; none when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` or
 * `ignore_configured_endpoint_urls` is true) and path-style addressing (`s3 = addressing_style =
 * path | virtual`). Credentials are left to the SDK, which resolves every kind a profile can hold
 * (keys, `credential_process`, SSO, `role_arn` with `source_profile`, web identity): `config.ts`
 * passes the profile's name to the S3 client.
 *
 * @example
 * ```ts
 * import { loadAwsProfile } from '@s3exchange/cli'
 *
 * const profile = await loadAwsProfile('ceph')   // [profile ceph] region = us-east-1, endpoint_url = http://127.0.0.1:7480
 * // { name: 'ceph', named: true, region: 'us-east-1', endpoint: 'http://127.0.0.1:7480', forcePathStyle: undefined }
 * ```
 */
import { loadSharedConfigFiles } from '@smithy/core/config'
import { ConfigurationError } from 's3exchange'
import { UsageError } from './args.js'

/** A profile of the AWS shared files, and what it says about S3. */
export interface AwsProfile {
  /** Its name. */
  name: string
  /** True when `--profile` or `AWS_PROFILE` named it (false for `default`, used when nothing is named). */
  named: boolean
  /** Where the name came from: `--profile`, `AWS_PROFILE`, or `default`. */
  source: '--profile' | 'AWS_PROFILE' | 'default'
  /** `region`. */
  region: string | undefined
  /** The S3 endpoint it configures. */
  endpoint: string | undefined
  /** `s3.addressing_style`: `path` → true, `virtual` → false, otherwise undefined. */
  forcePathStyle: boolean | undefined
}

/** `--profile` or `AWS_PROFILE` names a profile that is in neither file; a usage error (exit 2). */
export class ProfileNotFoundError extends UsageError {
  override name = 'ProfileNotFoundError'
  /** The profile's name. */
  readonly profile: string
  /** Where the name came from: `--profile` or `AWS_PROFILE`. */
  readonly source: string

  constructor(profile: string, source: string) {
    super(
      `AWS profile '${profile}' (from ${source}) is in neither the AWS config file nor the credentials file (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE; default ~/.aws/config, ~/.aws/credentials)`,
    )
    this.profile = profile
    this.source = source
  }
}

/**
 * Reads the profile `flagProfile` (else `env.AWS_PROFILE`, else `default`) from the shared files
 * named in `env`; see the module comment. Undefined when `default` is used and does not exist.
 */
export async function loadAwsProfile(
  flagProfile: string | undefined,
  env: Record<string, string | undefined> = process.env,
): Promise<AwsProfile | undefined> {
  const source = flagProfile ? '--profile' : env.AWS_PROFILE ? 'AWS_PROFILE' : 'default'
  const name = flagProfile || env.AWS_PROFILE || 'default'
  const files = await loadSharedConfigFiles({
    ...(env.AWS_SHARED_CREDENTIALS_FILE ? { filepath: env.AWS_SHARED_CREDENTIALS_FILE } : {}),
    ...(env.AWS_CONFIG_FILE ? { configFilepath: env.AWS_CONFIG_FILE } : {}),
    ignoreCache: true,
  })
  const fromConfig = files.configFile[name]
  const fromCredentials = files.credentialsFile[name]
  if (fromConfig === undefined && fromCredentials === undefined) {
    if (source === 'default') return undefined
    throw new ProfileNotFoundError(name, source)
  }
  // As the SDK merges them: the config file wins over the credentials file.
  const profile = { ...fromCredentials, ...fromConfig }
  let endpoint = profile.endpoint_url
  if (profile.services) {
    const services = files.configFile[`services.${profile.services}`]
    if (services === undefined) {
      throw new ConfigurationError(
        `AWS profile '${name}' names services '${profile.services}', but there is no [services ${profile.services}] section`,
      )
    }
    endpoint = services['s3.endpoint_url'] ?? endpoint
  }
  if (isTrue(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) || isTrue(profile.ignore_configured_endpoint_urls)) endpoint = undefined
  const style = profile['s3.addressing_style']
  return {
    name,
    named: source !== 'default',
    source,
    region: profile.region || undefined,
    endpoint: endpoint || undefined,
    forcePathStyle: style === 'path' ? true : style === 'virtual' ? false : undefined,
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && value.toLowerCase() === 'true'
}
