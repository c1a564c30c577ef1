/**
 * The store `s3x` works with. Each setting comes from the first of these that gives it:
 *
 * 1. the flags `--endpoint`, `--bucket`, `--region` (and, for the bucket, an `s3://bucket/…`
 *    argument: see `operands.ts`);
 * 2. the environment, as `S3ExchangeStore.fromEnv()` reads it (`S3_*` variables, then `AWS_*`
 *    ones), then a `.env` file in the working directory;
 * 3. the AWS profile (`--profile`, else `AWS_PROFILE`, else `default`; see `profile.ts`): its
 *    region, its S3 endpoint and its addressing style;
 * 4. the defaults: region `us-east-1`, AWS's own endpoint, path-style addressing when an endpoint
 *    is set.
 *
 * Credentials: `S3_AWS_ACCESS_KEY_ID` and `S3_AWS_SECRET_ACCESS_KEY` (with `S3_AWS_SESSION_TOKEN`)
 * win; otherwise, with `--profile`, the profile's credentials as the SDK resolves them (keys,
 * `credential_process`, SSO, assumed roles), and `AWS_ACCESS_KEY_ID` is not used, as `aws
 * --profile` ignores it; otherwise `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; otherwise the
 * SDK's default chain (which reads `AWS_PROFILE` or `default`). Without a bucket from anywhere, it is
 * a usage error (exit 2) that says how to give one.
 *
 * @example
 * ```ts
 * import { loadAwsProfile, storeFromFlags } from '@s3exchange/cli'
 *
 * // S3_ENDPOINT_URL=http://localhost:9000 S3_BUCKET=data in the environment
 * const store = storeFromFlags({ bucket: 'other-bucket' })   // the endpoint from the env, the bucket from the flag
 * const viaProfile = storeFromFlags({}, process.env, { profile: await loadAwsProfile('ceph') })
 * ```
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { type OnEvent, S3ExchangeStore, type SseCustomerKey, settingsFromEnv } from 's3exchange'
import { UsageError } from './args.js'
import { chooseBucket, type LocatedOperands } from './operands.js'
import type { AwsProfile } from './profile.js'

/** The connection flags. */
export interface ConnectionFlags {
  /** S3 endpoint URL (e.g. `http://localhost:9000`); path-style addressing follows, as with `S3_ENDPOINT_URL`. */
  endpoint?: string | undefined
  /** Bucket name. */
  bucket?: string | undefined
  /** Region to sign requests for. */
  region?: string | undefined
}

/** What else {@link storeFromFlags} takes into account. */
export interface StoreSources {
  /** The AWS profile (`--profile`, `AWS_PROFILE` or `default`), as `loadAwsProfile` read it. */
  profile?: AwsProfile | undefined
  /** The command's key operands: an `s3://` URI among them chooses the bucket. */
  operands?: LocatedOperands | undefined
  /** The command, for messages. */
  command?: string | undefined
  /** The SSE-C key of `--sse-c-key` or `S3X_SSE_C_KEY` (see `sseCustomerKeyFromFlags`): sent with every read and write. */
  sseCustomerKey?: SseCustomerKey | undefined
  /** The event hook of `--verbose`: the store's `onEvent`. */
  onEvent?: OnEvent | undefined
}

/** AWS credentials variables that `--profile` sets aside, as `aws --profile` does. */
const AWS_KEY_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']

/** Options for {@link environmentWith}. */
export interface LayerOptions {
  /** The AWS profile. */
  profile?: AwsProfile | undefined
  /** The dotenv file, or false for none. Default `.env` in the working directory. */
  envFile?: string | false
}

/**
 * The variables `settingsFromEnv` reads, layered as the module comment says: the flags over the
 * environment, over `.env`, over what the profile sets (as the variables it stands for).
 */
export function environmentWith(
  flags: ConnectionFlags,
  env: Record<string, string | undefined> = process.env,
  options: LayerOptions = {},
): Record<string, string | undefined> {
  const { profile, envFile = '.env' } = options
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''))
  const layered: Record<string, string | undefined> = {
    ...(profile?.region ? { AWS_DEFAULT_REGION: profile.region } : {}),
    ...(profile?.endpoint ? { AWS_ENDPOINT_URL: profile.endpoint } : {}),
    ...(profile?.forcePathStyle !== undefined ? { S3_FORCE_PATH_STYLE: String(profile.forcePathStyle) } : {}),
    ...(envFile === false ? {} : readEnvFile(envFile)),
    ...set,
    ...(flags.endpoint ? { S3_ENDPOINT_URL: flags.endpoint } : {}),
    ...(flags.region ? { S3_REGION: flags.region } : {}),
    ...(flags.bucket ? { S3_BUCKET: flags.bucket } : {}),
  }
  if (profile?.source === '--profile') for (const name of AWS_KEY_VARIABLES) delete layered[name]
  return layered
}

/** A store from the flags, the environment and the profile; see the module comment. */
export function storeFromFlags(
  flags: ConnectionFlags,
  env: Record<string, string | undefined> = process.env,
  sources: StoreSources = {},
): S3ExchangeStore {
  for (const [flag, value] of Object.entries(flags)) {
    if (value === '') throw new UsageError(`--${flag} needs a value`)
  }
  const merged = environmentWith(flags, env, { profile: sources.profile })
  const configured = settingsFromEnv({ env: merged, envFile: false }).bucket
  const bucket = sources.operands ? chooseBucket(sources.operands, configured, sources.command) : configured
  if (!bucket) throw new UsageError('no bucket: set S3_BUCKET (in the environment or .env), pass --bucket, or give an s3://bucket/… URI')
  const profile = sources.profile?.source === '--profile' ? { profile: sources.profile.name } : {}
  // The endpoint is resolved above (from the profile named here, below the variables that win over
  // it); the SDK must not add one of its own from another profile.
  return S3ExchangeStore.fromEnv({
    env: merged,
    envFile: false,
    bucket,
    clientConfig: { ...profile, ignoreConfiguredEndpointUrls: true },
    ...(sources.sseCustomerKey ? { sseCustomerKey: sources.sseCustomerKey } : {}),
    ...(sources.onEvent ? { onEvent: sources.onEvent } : {}),
  })
}

/** The variables of a dotenv file, if there is one. */
function readEnvFile(path: string): Record<string, string | undefined> {
  let text: string
  try {
    text = readFileSync(resolve(path), 'utf8')
  } catch {
    return {}
  }
  return parseEnv(text)
}
