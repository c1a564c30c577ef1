/**
 * The store `s3x` works with: configured from the same environment as `S3ExchangeStore.fromEnv()`
 * (`S3_*` variables, then `AWS_*` ones, then a `.env` file in the working directory), with the
 * flags `--endpoint`, `--bucket` and `--region` winning over all of them. Without a bucket from
 * either, it is a usage error (exit 2) that says how to give one.
 *
 * @example
 * ```ts
 * import { storeFromFlags } from '@s3exchange/cli'
 *
 * // S3_ENDPOINT_URL=http://localhost:9000 S3_BUCKET=data in the environment
 * const store = storeFromFlags({ bucket: 'other-bucket' })   // the endpoint from the env, the bucket from the flag
 * ```
 */
import { S3ExchangeStore, settingsFromEnv } from 's3exchange'
import { UsageError } from './args.js'

/** The connection flags. */
export interface ConnectionFlags {
  /** S3 endpoint URL (e.g. `http://localhost:9000`); path-style addressing follows, as with `S3_ENDPOINT_URL`. */
  endpoint?: string | undefined
  /** Bucket name. */
  bucket?: string | undefined
  /** Region to sign requests for. */
  region?: string | undefined
}

/** The environment with the flags applied, as `settingsFromEnv` reads it. */
export function environmentWith(flags: ConnectionFlags, env: Record<string, string | undefined> = process.env) {
  return {
    ...env,
    ...(flags.endpoint ? { S3_ENDPOINT_URL: flags.endpoint } : {}),
    ...(flags.region ? { S3_REGION: flags.region } : {}),
    ...(flags.bucket ? { S3_BUCKET: flags.bucket } : {}),
  }
}

/** A store from the environment and the flags; see the module comment. */
export function storeFromFlags(flags: ConnectionFlags, env: Record<string, string | undefined> = process.env): S3ExchangeStore {
  const merged = environmentWith(flags, env)
  const settings = settingsFromEnv({ env: merged })
  if (!settings.bucket) throw new UsageError('no bucket: set S3_BUCKET (in the environment or .env) or pass --bucket')
  for (const [flag, value] of Object.entries(flags)) {
    if (value === '') throw new UsageError(`--${flag} needs a value`)
  }
  return S3ExchangeStore.fromEnv({ env: merged, bucket: settings.bucket })
}
