/**
 * Reading S3 settings from the environment, as Python s3exchange's `S3Settings` does (`S3_*`
 * variables and a `.env` file) and as the AWS tools do (`AWS_*` variables). Variables of the
 * process win over the `.env` file; `S3_*` win over `AWS_*`. Without credentials in either, the
 * AWS SDK's default credential chain is used.
 *
 * | setting | variables, first found wins |
 * | --- | --- |
 * | endpoint | `S3_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` (none: AWS itself) |
 * | region | `S3_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION` (none: `us-east-1`) |
 * | credentials | `S3_AWS_ACCESS_KEY_ID` + `S3_AWS_SECRET_ACCESS_KEY` (+ `S3_AWS_SESSION_TOKEN`), else `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) |
 * | bucket | `S3_BUCKET` |
 * | path-style addressing | `S3_FORCE_PATH_STYLE` (`true`/`false`; default: true when an endpoint is set) |
 *
 * Credentials are taken whole from one source, never field by field: when any `S3_AWS_*`
 * variable is set, the key id, the secret and the session token all come from `S3_AWS_*` (an
 * `S3_*` pair for MinIO or R2 never gets the `AWS_SESSION_TOKEN` of the role it runs under);
 * otherwise all from `AWS_*`. A pair missing its key id or its secret is a `ConfigurationError`
 * naming the variables, never completed from the other source.
 *
 * @example
 * ```ts
 * import { createClient, settingsFromEnv } from '@s3exchange/core'
 *
 * const settings = settingsFromEnv()   // reads process.env and ./.env
 * console.log(settings.endpoint, settings.bucket)
 * const client = createClient(settings, { maxAttempts: 5 })
 * ```
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { ConfigurationError } from '../format/errors.js'

/** Where to read settings from. */
export interface EnvSource {
  /** Variables to read. Default: `process.env`. */
  env?: Record<string, string | undefined>
  /** A dotenv file to read as well (its values lose to `env`), or false for none. Default `.env` in the working directory. */
  envFile?: string | false
}

/** S3 settings read from the environment. */
export interface S3Settings {
  endpoint: string | undefined
  region: string
  bucket: string | undefined
  forcePathStyle: boolean
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined
}

/** Reads the settings; see the module comment. */
export function settingsFromEnv(source: EnvSource = {}): S3Settings {
  const env = mergedEnv(source)
  const pick = (...names: string[]) => {
    for (const name of names) {
      const value = env[name]
      if (value !== undefined && value !== '') return value
    }
    return undefined
  }
  const endpoint = pick('S3_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL')
  const pathStyle = pick('S3_FORCE_PATH_STYLE')
  return {
    endpoint,
    region: pick('S3_REGION', 'AWS_REGION', 'AWS_DEFAULT_REGION') ?? 'us-east-1',
    bucket: pick('S3_BUCKET'),
    forcePathStyle: pathStyle === undefined ? endpoint !== undefined : /^(1|true|yes)$/i.test(pathStyle),
    credentials: credentialsFrom(pick),
  }
}

/** The variables of each source of credentials, in order of precedence. */
const CREDENTIAL_SOURCES = [
  { keyId: 'S3_AWS_ACCESS_KEY_ID', secret: 'S3_AWS_SECRET_ACCESS_KEY', token: 'S3_AWS_SESSION_TOKEN' },
  { keyId: 'AWS_ACCESS_KEY_ID', secret: 'AWS_SECRET_ACCESS_KEY', token: 'AWS_SESSION_TOKEN' },
] as const

/** The credentials of the first source that has any of its variables, whole; see the module comment. */
function credentialsFrom(pick: (...names: string[]) => string | undefined): S3Settings['credentials'] {
  for (const [i, source] of CREDENTIAL_SOURCES.entries()) {
    const accessKeyId = pick(source.keyId)
    const secretAccessKey = pick(source.secret)
    const sessionToken = pick(source.token)
    // A lone AWS_SESSION_TOKEN, with no AWS pair, is not a source: the SDK's chain ignores it too.
    const used = accessKeyId !== undefined || secretAccessKey !== undefined || (i === 0 && sessionToken !== undefined)
    if (!used) continue
    if (accessKeyId === undefined || secretAccessKey === undefined) {
      const missing = [accessKeyId === undefined ? source.keyId : undefined, secretAccessKey === undefined ? source.secret : undefined]
        .filter((name) => name !== undefined)
        .join(' and ')
      const given = [source.keyId, source.secret, source.token].filter((name) => pick(name) !== undefined).join(', ')
      throw new ConfigurationError(
        `incomplete credentials: ${given} ${given.includes(',') ? 'are' : 'is'} set but ${missing} ${missing.includes(' and ') ? 'are' : 'is'} not; credentials are taken whole from one source (S3_AWS_* or AWS_*), never completed from the other`,
        { option: missing },
      )
    }
    return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
  }
  return undefined
}

/** The S3 client configuration for some settings. */
export function clientConfigFor(settings: S3Settings): S3ClientConfig {
  return {
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  }
}

/** A new S3 client for some settings, with `config` (retries, timeouts, checksums, ...) on top. */
export function createClient(settings: S3Settings, config: S3ClientConfig = {}): S3Client {
  return new S3Client({ ...clientConfigFor(settings), ...config })
}

function mergedEnv(source: EnvSource): Record<string, string | undefined> {
  const env = source.env ?? process.env
  const file = source.envFile === undefined ? '.env' : source.envFile
  if (file === false) return env
  let text: string
  try {
    text = readFileSync(resolve(file), 'utf8')
  } catch {
    return env
  }
  // Unset or empty variables do not hide the file's values.
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''))
  return { ...parseEnv(text), ...set }
}
