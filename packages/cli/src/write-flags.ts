/**
 * The write flags of `s3x put`, `s3x pack` and `s3x compact`, named as `aws s3 cp` names them,
 * and the global `--sse-c-key`: each becomes a field of core's `WriteOptions` (documented there),
 * applied to every object the command writes (objects, shards, manifest parts and the root).
 *
 * | flag | `WriteOptions` field |
 * | --- | --- |
 * | `--storage-class CLASS` | `storageClass` |
 * | `--sse AES256\|aws:kms\|aws:kms:dsse` | `serverSideEncryption` |
 * | `--sse-kms-key-id ID` | `sseKmsKeyId` |
 * | `--bucket-key-enabled` | `bucketKeyEnabled: true` |
 * | `--metadata NAME=VALUE` (repeatable) | `metadata` |
 * | `--tagging 'NAME=VALUE&…'` (URL-encoded) | `tagging` |
 * | `--cache-control VALUE` | `cacheControl` |
 * | `--content-encoding VALUE` | `contentEncoding` |
 * | `--acl ACL` | `acl` |
 * | `--sse-c-key KEY` (global; or `S3X_SSE_C_KEY`) | the store's `sseCustomerKey`: writes and reads |
 *
 * A bad value is a usage error (exit 2) naming the flag, before anything is written. The SSE-C key
 * is the base64 of 32 bytes, or `fileb://<path>` of a file holding the 32 bytes (as `aws s3`
 * reads it); it is never printed.
 *
 * @example
 * ```ts
 * import { parseFlags, WRITE_FLAGS, writeOptionsFromFlags } from '@s3exchange/cli'
 *
 * const { values } = parseFlags(['--sse', 'aws:kms', '--metadata', 'team=asr'], WRITE_FLAGS)
 * writeOptionsFromFlags(values, 'put') // { serverSideEncryption: 'aws:kms', metadata: { team: 'asr' } }
 * ```
 */
import { readFileSync } from 'node:fs'
import type { ParseArgsOptionsConfig } from 'node:util'
import { ConfigurationError, checkWriteOptions, type SseCustomerKey, type WriteOptions } from 's3exchange'
import { type FlagValues, UsageError } from './args.js'

/** The write flags, for a command's `options`. */
export const WRITE_FLAGS = {
  'storage-class': { type: 'string' },
  sse: { type: 'string' },
  'sse-kms-key-id': { type: 'string' },
  'bucket-key-enabled': { type: 'boolean' },
  metadata: { type: 'string', multiple: true },
  tagging: { type: 'string' },
  'cache-control': { type: 'string' },
  'content-encoding': { type: 'string' },
  acl: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig

/** Their help, for a command's `optionHelp`. */
export const WRITE_FLAG_HELP: [string, string][] = [
  ['--storage-class CLASS', 'storage class of what is written (STANDARD_IA, GLACIER_IR, ...)'],
  ['--sse AES256|aws:kms|aws:kms:dsse', 'server-side encryption of what is written'],
  ['--sse-kms-key-id ID', 'with --sse aws:kms: the KMS key (id, ARN or alias)'],
  ['--bucket-key-enabled', 'with --sse aws:kms: use an S3 Bucket Key'],
  ['--metadata NAME=VALUE', 'user metadata (x-amz-meta-NAME); repeat for more'],
  ['--tagging TAGS', "object tags, URL-encoded: 'team=asr&retention=90d'"],
  ['--cache-control VALUE', 'Cache-Control of what is written'],
  ['--content-encoding VALUE', 'Content-Encoding of what is written (bytes are stored as given)'],
  ['--acl ACL', 'canned ACL: private, bucket-owner-full-control, public-read, ...'],
]

/** The flag of each write option, for messages. */
const FLAG_OF: Record<keyof WriteOptions, string> = {
  storageClass: '--storage-class',
  serverSideEncryption: '--sse',
  sseKmsKeyId: '--sse-kms-key-id',
  bucketKeyEnabled: '--bucket-key-enabled',
  sseCustomerKey: '--sse-c-key',
  metadata: '--metadata',
  tagging: '--tagging',
  cacheControl: '--cache-control',
  contentEncoding: '--content-encoding',
  acl: '--acl',
}

/** The write options the flags give (none when no write flag is set); a bad one is a `UsageError` naming its flag. */
export function writeOptionsFromFlags(flags: FlagValues, command?: string): WriteOptions {
  const text = (name: string): string | undefined => {
    const value = flags[name]
    if (value === undefined) return undefined
    if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} needs a value`, command)
    return value
  }
  const options: WriteOptions = {}
  const storageClass = text('storage-class')
  if (storageClass !== undefined) options.storageClass = storageClass
  const sse = text('sse')
  if (sse !== undefined) options.serverSideEncryption = sse as WriteOptions['serverSideEncryption']
  const kmsKey = text('sse-kms-key-id')
  if (kmsKey !== undefined) options.sseKmsKeyId = kmsKey
  if (flags['bucket-key-enabled'] === true) options.bucketKeyEnabled = true
  const metadata = flags.metadata
  if (metadata !== undefined) options.metadata = parseMetadata(Array.isArray(metadata) ? metadata : [String(metadata)], command)
  const tagging = text('tagging')
  if (tagging !== undefined) options.tagging = tagging
  const cacheControl = text('cache-control')
  if (cacheControl !== undefined) options.cacheControl = cacheControl
  const contentEncoding = text('content-encoding')
  if (contentEncoding !== undefined) options.contentEncoding = contentEncoding
  const acl = text('acl')
  if (acl !== undefined) options.acl = acl as WriteOptions['acl']
  try {
    checkWriteOptions(options)
  } catch (error) {
    throw asUsageError(error, command)
  }
  return options
}

/** `NAME=VALUE` pairs into metadata; a pair without `=`, or a name given twice, is a usage error. */
function parseMetadata(pairs: readonly string[], command: string | undefined): Record<string, string> {
  const metadata: Record<string, string> = {}
  for (const pair of pairs) {
    const equals = pair.indexOf('=')
    if (equals < 1) throw new UsageError(`--metadata needs NAME=VALUE, not '${pair}'`, command)
    const name = pair.slice(0, equals)
    if (Object.hasOwn(metadata, name)) throw new UsageError(`--metadata ${name} is given twice`, command)
    metadata[name] = pair.slice(equals + 1)
  }
  return metadata
}

/**
 * The SSE-C key of `--sse-c-key` (or `S3X_SSE_C_KEY` when the flag is absent): the base64 of 32
 * bytes, or `fileb://<path>` of a file of 32 bytes. Undefined when neither is set. A bad key is a
 * usage error that never shows it.
 */
export function sseCustomerKeyFromFlags(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  command?: string,
): SseCustomerKey | undefined {
  const source = flag ?? (env.S3X_SSE_C_KEY || undefined)
  const name = flag === undefined ? 'S3X_SSE_C_KEY' : '--sse-c-key'
  if (source === undefined) return undefined
  if (source === '') throw new UsageError(`${name} needs a value`, command)
  let key: SseCustomerKey
  if (source.startsWith('fileb://')) {
    const path = source.slice('fileb://'.length)
    let bytes: Uint8Array
    try {
      bytes = readFileSync(path)
    } catch (error) {
      throw new UsageError(`${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, command)
    }
    key = { key: bytes }
  } else {
    key = { key: source }
  }
  try {
    checkWriteOptions({ sseCustomerKey: key })
  } catch (error) {
    if (error instanceof ConfigurationError) {
      throw new UsageError(`${name} must be the base64 of 32 bytes, or fileb://<path> of a file of 32 bytes`, command)
    }
    throw error
  }
  return key
}

function asUsageError(error: unknown, command: string | undefined): unknown {
  if (!(error instanceof ConfigurationError) || error.option === undefined) return error
  const flag = FLAG_OF[error.option as keyof WriteOptions] ?? error.option
  return new UsageError(`${flag}: ${error.message}`, command)
}
