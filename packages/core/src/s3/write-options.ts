/**
 * Write options: what S3 users set on the objects they write. Storage class, server-side
 * encryption (SSE-S3, SSE-KMS with a key id and an S3 Bucket Key, DSSE-KMS, or SSE-C with a key of
 * your own), user metadata, tags, `Cache-Control`, `Content-Encoding` and a canned ACL: one
 * interface, {@link WriteOptions}, documented here and taken by every writer (`putObject`,
 * `putObjects`, `shardInto`, `ShardWriter`, `writeManifestObject`, `writeManifestParts`,
 * `compactInto`, the root update of `appendToManifest`; the store and `s3x` derive theirs from it).
 *
 * Where they come from: `S3Context.writeOptions` (and `S3Context.sseCustomerKey`) apply to every
 * write made with the context, a store's to every write of the store; a call's own options
 * override them field by field ({@link withWriteOptions}). Where they go: every option is sent with
 * the single `PutObject` and with `CreateMultipartUpload`; an SSE-C key also with every
 * `UploadPart` and `CompleteMultipartUpload`, and, since the server needs it to read such an object
 * back, with every `GetObject` and `HeadObject` of the context (`S3Context.sseCustomerKey`: whole
 * reads, ranged member reads, archive heads, resumed reads, the root read of an append).
 *
 * Everything is checked before the first request: a bad or inconsistent option is a
 * `ConfigurationError` whose `option` names it. An SSE-C key never appears in messages, and the
 * form the store keeps ({@link normalizeSseCustomerKey}) prints as its MD5 only.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto'
 * import { putObject, withWriteOptions } from '@s3exchange/core'
 *
 * // Every write of this context: SSE-KMS with a bucket key, in STANDARD_IA, tagged.
 * const ctx = withWriteOptions({ client, bucket: 'my-bucket' }, {
 *   serverSideEncryption: 'aws:kms',
 *   sseKmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/…',
 *   bucketKeyEnabled: true,
 *   storageClass: 'STANDARD_IA',
 *   tagging: { team: 'asr', retention: '90d' },
 * })
 * await putObject(ctx, 'training/123/samples/file.wav', wavBytes, { metadata: { 'sample-rate': '16000' } })
 *
 * // SSE-C: the same key encrypts the object and must come with every read of it (it replaces
 * // the context's SSE-KMS: a call that chooses an encryption replaces the context's).
 * const sealed = withWriteOptions(ctx, { sseCustomerKey: { key: randomBytes(32) } })
 * await putObject(sealed, 'private/file.wav', wavBytes)
 * const body = await getObjectBody(sealed, 'private/file.wav') // sends the key
 * ```
 *
 * (Over 300 lines on purpose: the one interface of every write option, its documentation and its
 * checks, kept side by side so that an option's words and its rule cannot drift apart.)
 */
import { createHash } from 'node:crypto'
import { inspect } from 'node:util'
import type { ObjectCannedACL, StorageClass } from '@aws-sdk/client-s3'
import { ConfigurationError } from '../format/errors.js'

/** A customer-provided encryption key (SSE-C). */
export interface SseCustomerKey {
  /** The 256-bit AES key: 32 bytes, or their base64 (44 characters). */
  readonly key: Uint8Array | string
  /** The key's MD5, base64; computed when absent, checked when given. */
  readonly keyMd5?: string | undefined
  /** The only algorithm S3 has: `'AES256'` (the default). */
  readonly algorithm?: 'AES256' | undefined
}

/** The SSE-C key option, which reads take too. */
export interface SseCustomerKeyOption {
  /**
   * SSE-C: encrypt the object with this key of yours (`x-amz-server-side-encryption-customer-*`).
   * S3 keeps no copy: every read of the object (GET, ranged GET, HEAD) must send the same key, so
   * set it on the store or context whose reads need it, where it is sent on every GET and HEAD;
   * `null` sends none (overriding a store's key, e.g. to read an object that is not SSE-C: AWS
   * refuses SSE-C headers on such objects). Exclusive with `serverSideEncryption`. AWS S3 and Ceph
   * RGW accept it only over HTTPS (Ceph unless `rgw_crypt_require_ssl` is off).
   */
  sseCustomerKey?: SseCustomerKey | null | undefined
}

/** How objects are written: storage, encryption, metadata. See the module comment. */
export interface WriteOptions extends SseCustomerKeyOption {
  /**
   * Storage class (`x-amz-storage-class`): `STANDARD`, `STANDARD_IA`, `ONEZONE_IA`,
   * `INTELLIGENT_TIERING`, `GLACIER_IR`, `GLACIER`, `DEEP_ARCHIVE`, … or a class your server defines
   * (Ceph RGW placement storage classes). Default: the bucket's (`STANDARD`). Objects in `GLACIER`
   * or `DEEP_ARCHIVE` cannot be read before they are restored.
   */
  storageClass?: StorageClass | (string & {}) | undefined
  /**
   * Server-side encryption with keys S3 manages (`x-amz-server-side-encryption`): `'AES256'`
   * (SSE-S3), `'aws:kms'` (SSE-KMS), `'aws:kms:dsse'` (DSSE-KMS). Default: the bucket's default
   * encryption.
   */
  serverSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse' | undefined
  /** With `aws:kms` or `aws:kms:dsse`: the KMS key (id, ARN or alias). Default: the AWS managed key `aws/s3`. */
  sseKmsKeyId?: string | undefined
  /** With `aws:kms`: use (or not) an S3 Bucket Key, fewer KMS requests (DSSE-KMS has none). Default: the bucket's setting. */
  bucketKeyEnabled?: boolean | undefined
  /**
   * User metadata (`x-amz-meta-<name>`): names are HTTP tokens (ASCII letters, digits and
   * ``!#$%&'*+-.^_`|~``), given without `x-amz-meta-`, distinct ignoring case (S3 lowercases them);
   * values are printable ASCII (encode others yourself, e.g. with `encodeURIComponent`); at most
   * 2 KiB of names and values together, as AWS S3 allows.
   */
  metadata?: Readonly<Record<string, string>> | undefined
  /**
   * Object tags (`x-amz-tagging`): `{ name: value }`, or the URL-encoded form `'a=1&b=two%20words'`.
   * At most 10 tags; names of 1 to 128 characters, values up to 256, of letters, digits, spaces and
   * `+ - = . _ : / @`; names distinct and not starting with `aws:`.
   */
  tagging?: Readonly<Record<string, string>> | string | undefined
  /** `Cache-Control` of the object, returned with every GET (e.g. `'max-age=3600'`). */
  cacheControl?: string | undefined
  /**
   * `Content-Encoding` of the object, returned with every GET. The library stores the bytes as
   * given: set it only for bytes you encoded that way (HTTP clients may decode them on the fly).
   */
  contentEncoding?: string | undefined
  /** A canned ACL (`x-amz-acl`): `private`, `bucket-owner-full-control`, `public-read`, … Buckets with ACLs disabled refuse all but `bucket-owner-full-control`. */
  acl?: ObjectCannedACL | undefined
}

/** The write options of a context, without the SSE-C key (which `S3Context.sseCustomerKey` holds, for reads as well). */
export type ContextWriteOptions = Omit<WriteOptions, 'sseCustomerKey'>

/** What a context holds of the write options (`S3Context` has these fields). */
export interface WriteContext {
  /**
   * Write options for every object written with this context (see `WriteOptions`); a call's own
   * options override them field by field.
   */
  writeOptions?: ContextWriteOptions | undefined
  /**
   * The SSE-C key sent with every write and every read (GET, HEAD) made with this context: see
   * `WriteOptions.sseCustomerKey`.
   */
  sseCustomerKey?: SseCustomerKey | undefined
}

/** The names of the fields of {@link WriteOptions}. */
export const WRITE_OPTION_NAMES = [
  'storageClass',
  'serverSideEncryption',
  'sseKmsKeyId',
  'bucketKeyEnabled',
  'sseCustomerKey',
  'metadata',
  'tagging',
  'cacheControl',
  'contentEncoding',
  'acl',
] as const satisfies readonly (keyof WriteOptions)[]

const SSE_VALUES = ['AES256', 'aws:kms', 'aws:kms:dsse']
const CANNED_ACLS = [
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'aws-exec-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
]
/** An HTTP token (RFC 9110): what a header name, a metadata name or a storage class may be made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Printable ASCII and tabs: what a header value may hold without being mangled. */
const HEADER_VALUE = /^[\t\x20-\x7e]*$/
/** AWS's allowed characters in tag names and values. */
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u
const MAX_TAGS = 10
const MAX_METADATA_BYTES = 2048

/**
 * The write options among `options`, merged over the context's: a new context whose every write
 * applies them. Each given field replaces the context's (metadata and tags as a whole); a call that
 * chooses an encryption (`serverSideEncryption` or `sseCustomerKey`) replaces the context's
 * encryption fields as a group, so that SSE-C for one call works in a store that uses SSE-KMS;
 * `sseCustomerKey: null` removes the context's SSE-C key. Checked first: a bad or inconsistent
 * option is a `ConfigurationError` naming it. Other fields of `options` are ignored, so a writer's
 * whole options object may be passed.
 */
export function withWriteOptions<C extends WriteContext>(ctx: C, options: WriteOptions | undefined): C {
  if (options === undefined) return ctx
  const given = pickWriteOptions(options)
  if (Object.keys(given).length === 0) return ctx
  const { sseCustomerKey, ...rest } = given
  const inherited: ContextWriteOptions = { ...ctx.writeOptions }
  let key = sseCustomerKey === null ? undefined : ctx.sseCustomerKey
  if (rest.serverSideEncryption !== undefined || sseCustomerKey) {
    for (const name of ENCRYPTION_OPTIONS) delete inherited[name]
    key = sseCustomerKey ?? undefined
  }
  const writeOptions: ContextWriteOptions = { ...inherited, ...rest }
  checkWriteOptions({ ...writeOptions, sseCustomerKey: key })
  return { ...ctx, writeOptions, sseCustomerKey: key === undefined ? undefined : normalizeSseCustomerKey(key) }
}

/** The fields that say how an object is encrypted, replaced as a group (see `withWriteOptions`). */
const ENCRYPTION_OPTIONS = ['serverSideEncryption', 'sseKmsKeyId', 'bucketKeyEnabled'] as const

/** The write options among `options`' fields, those that are not undefined. */
export function pickWriteOptions(options: WriteOptions): WriteOptions {
  const picked: Record<string, unknown> = {}
  for (const name of WRITE_OPTION_NAMES) if (options[name] !== undefined) picked[name] = options[name]
  return picked as WriteOptions
}

/** Checks write options, each and together; a bad one throws `ConfigurationError` naming it. See {@link WriteOptions}. */
export function checkWriteOptions(options: WriteOptions): void {
  const { storageClass, serverSideEncryption: sse, sseKmsKeyId, bucketKeyEnabled, sseCustomerKey, acl } = options
  if (storageClass !== undefined && !(typeof storageClass === 'string' && TOKEN.test(storageClass))) {
    throw invalid('storageClass', `storageClass must be a storage class name such as STANDARD_IA, not ${describe(storageClass)}`)
  }
  if (sse !== undefined && !SSE_VALUES.includes(sse)) {
    throw invalid(
      'serverSideEncryption',
      `serverSideEncryption must be ${SSE_VALUES.map((v) => `'${v}'`).join(', ')}, not ${describe(sse)}`,
    )
  }
  if (sseKmsKeyId !== undefined) {
    if (sse !== 'aws:kms' && sse !== 'aws:kms:dsse') {
      throw invalid('sseKmsKeyId', "sseKmsKeyId needs serverSideEncryption: 'aws:kms' or 'aws:kms:dsse'")
    }
    checkHeaderValue('sseKmsKeyId', sseKmsKeyId)
  }
  if (bucketKeyEnabled !== undefined) {
    if (typeof bucketKeyEnabled !== 'boolean')
      throw invalid('bucketKeyEnabled', `bucketKeyEnabled must be a boolean, not ${describe(bucketKeyEnabled)}`)
    if (sse !== 'aws:kms')
      throw invalid('bucketKeyEnabled', "bucketKeyEnabled needs serverSideEncryption: 'aws:kms' (S3 Bucket Keys are for SSE-KMS)")
  }
  if (sseCustomerKey !== undefined && sseCustomerKey !== null) {
    if (sse !== undefined) {
      throw invalid('sseCustomerKey', 'sseCustomerKey (SSE-C) and serverSideEncryption are exclusive: an object has one kind of encryption')
    }
    normalizeSseCustomerKey(sseCustomerKey)
  }
  if (options.metadata !== undefined) metadataHeaders(options.metadata)
  if (options.tagging !== undefined) taggingHeader(options.tagging)
  if (options.cacheControl !== undefined) checkHeaderValue('cacheControl', options.cacheControl)
  if (options.contentEncoding !== undefined) checkHeaderValue('contentEncoding', options.contentEncoding)
  if (acl !== undefined && !CANNED_ACLS.includes(acl)) {
    throw invalid('acl', `acl must be a canned ACL (${CANNED_ACLS.join(', ')}), not ${describe(acl)}`)
  }
}

/** The request fields of `PutObject` and `CreateMultipartUpload` for the context's write options and SSE-C key. */
export function objectWriteParams(ctx: WriteContext): ObjectWriteParams {
  const options = ctx.writeOptions
  if (options?.serverSideEncryption !== undefined && ctx.sseCustomerKey !== undefined) {
    throw invalid('sseCustomerKey', 'sseCustomerKey (SSE-C) and serverSideEncryption are exclusive: an object has one kind of encryption')
  }
  return { ...(options === undefined ? {} : paramsOf(options)), ...sseCustomerParams(ctx) }
}

/** The request fields that send the context's SSE-C key (for `UploadPart`, `CompleteMultipartUpload`, `GetObject`, `HeadObject`), if it has one. */
export function sseCustomerParams(ctx: Pick<WriteContext, 'sseCustomerKey'>): SseCustomerParams {
  const key = ctx.sseCustomerKey
  if (key === undefined) return {}
  const normalized = normalizeSseCustomerKey(key)
  return {
    SSECustomerAlgorithm: normalized.algorithm,
    // Bytes, not base64: every SDK version base64-encodes bytes itself (older ones would encode a
    // base64 string a second time), and computes the MD5 from them.
    SSECustomerKey: normalized.key as unknown as string,
    SSECustomerKeyMD5: normalized.keyMd5,
  }
}

/** The SSE-C request fields. */
export interface SseCustomerParams {
  SSECustomerAlgorithm?: string
  SSECustomerKey?: string
  SSECustomerKeyMD5?: string
}

/** The request fields of the write options, as `PutObject` and `CreateMultipartUpload` name them. */
export interface ObjectWriteParams extends SseCustomerParams {
  StorageClass?: StorageClass
  ServerSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse'
  SSEKMSKeyId?: string
  BucketKeyEnabled?: boolean
  Metadata?: Record<string, string>
  Tagging?: string
  CacheControl?: string
  ContentEncoding?: string
  ACL?: ObjectCannedACL
}

const paramsCache = new WeakMap<ContextWriteOptions, ObjectWriteParams>()

/** The request fields of write options (checked once per options object). */
function paramsOf(options: ContextWriteOptions): ObjectWriteParams {
  let params = paramsCache.get(options)
  if (params === undefined) {
    checkWriteOptions(options)
    const metadata = options.metadata === undefined ? undefined : metadataHeaders(options.metadata)
    const tagging = options.tagging === undefined ? undefined : taggingHeader(options.tagging)
    params = dropUndefined({
      StorageClass: options.storageClass as StorageClass | undefined,
      ServerSideEncryption: options.serverSideEncryption,
      SSEKMSKeyId: options.sseKmsKeyId,
      BucketKeyEnabled: options.bucketKeyEnabled,
      Metadata: metadata && Object.keys(metadata).length > 0 ? metadata : undefined,
      Tagging: tagging === '' ? undefined : tagging,
      CacheControl: options.cacheControl,
      ContentEncoding: options.contentEncoding,
      ACL: options.acl,
    })
    paramsCache.set(options, params)
  }
  return params
}

/** Checks user metadata (see `WriteOptions.metadata`); returns it as the request sends it. */
export function metadataHeaders(metadata: Readonly<Record<string, string>>): Record<string, string> {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw invalid('metadata', `metadata must be an object of names and string values, not ${describe(metadata)}`)
  }
  const seen = new Set<string>()
  let bytes = 0
  for (const [name, value] of Object.entries(metadata)) {
    if (!TOKEN.test(name)) {
      throw invalid('metadata', `metadata name ${JSON.stringify(name)} is not an HTTP token (ASCII letters, digits and !#$%&'*+-.^_\`|~)`)
    }
    if (name.toLowerCase().startsWith('x-amz-meta-')) {
      throw invalid('metadata', `metadata name ${JSON.stringify(name)}: give it without the x-amz-meta- prefix (the request adds it)`)
    }
    if (seen.has(name.toLowerCase()))
      throw invalid('metadata', `metadata names ${JSON.stringify(name)} and another differ only in case (S3 lowercases them)`)
    seen.add(name.toLowerCase())
    if (typeof value !== 'string') throw invalid('metadata', `metadata ${JSON.stringify(name)} must be a string, not ${describe(value)}`)
    if (!/^[\x20-\x7e]*$/.test(value)) {
      throw invalid(
        'metadata',
        `metadata ${JSON.stringify(name)} has characters other than printable ASCII: encode them (e.g. encodeURIComponent)`,
      )
    }
    bytes += name.length + value.length
  }
  if (bytes > MAX_METADATA_BYTES)
    throw invalid('metadata', `metadata is ${bytes} bytes of names and values; S3 allows ${MAX_METADATA_BYTES}`)
  return { ...metadata }
}

/** Checks tags (see `WriteOptions.tagging`); returns the `x-amz-tagging` value. */
export function taggingHeader(tagging: Readonly<Record<string, string>> | string): string {
  let pairs: [string, string][]
  if (typeof tagging === 'string') {
    if (!HEADER_VALUE.test(tagging)) throw invalid('tagging', 'tagging as a string must be URL-encoded (name=value&name=value)')
    pairs = tagging === '' ? [] : [...new URLSearchParams(tagging)]
  } else if (tagging !== null && typeof tagging === 'object' && !Array.isArray(tagging)) {
    pairs = Object.entries(tagging)
  } else {
    throw invalid('tagging', `tagging must be an object of tags or a URL-encoded string, not ${describe(tagging)}`)
  }
  if (pairs.length > MAX_TAGS) throw invalid('tagging', `tagging has ${pairs.length} tags; S3 allows ${MAX_TAGS} per object`)
  const names = new Set<string>()
  for (const [name, value] of pairs) {
    if (typeof value !== 'string') throw invalid('tagging', `tag ${JSON.stringify(name)} must have a string value, not ${describe(value)}`)
    const nameLength = [...name].length
    if (nameLength < 1 || nameLength > 128) throw invalid('tagging', `tag name ${JSON.stringify(name)} must be 1 to 128 characters long`)
    if ([...value].length > 256) throw invalid('tagging', `tag ${JSON.stringify(name)} has a value longer than 256 characters`)
    if (!TAG_CHARS.test(name) || !TAG_CHARS.test(value)) {
      throw invalid('tagging', `tag ${JSON.stringify(name)}: names and values may hold letters, digits, spaces and + - = . _ : / @ only`)
    }
    if (name.toLowerCase().startsWith('aws:')) throw invalid('tagging', `tag name ${JSON.stringify(name)}: the aws: prefix is reserved`)
    if (names.has(name)) throw invalid('tagging', `tag name ${JSON.stringify(name)} is given twice`)
    names.add(name)
  }
  if (typeof tagging === 'string') return tagging
  return pairs.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&')
}

/**
 * An SSE-C key, checked (32 bytes, `AES256`, a given MD5 that matches) and held so that it does not
 * show when logged: `util.inspect` and `JSON.stringify` give its algorithm and MD5 only. The store
 * keeps its key in this form; a key already normalized is returned as it is.
 */
export function normalizeSseCustomerKey(input: SseCustomerKey): CustomerKey {
  if (input instanceof CustomerKey) return input
  if (input === null || typeof input !== 'object')
    throw invalid('sseCustomerKey', 'sseCustomerKey must be { key } (32 bytes, or their base64)')
  const algorithm = input.algorithm ?? 'AES256'
  if (algorithm !== 'AES256') throw invalid('sseCustomerKey', `sseCustomerKey.algorithm must be 'AES256', not ${describe(algorithm)}`)
  let bytes: Uint8Array
  if (typeof input.key === 'string') {
    const decoded = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(input.key) ? Buffer.from(input.key, 'base64') : undefined
    if (decoded === undefined)
      throw invalid('sseCustomerKey', 'sseCustomerKey.key as a string must be the base64 of 32 bytes (44 characters)')
    bytes = new Uint8Array(decoded)
  } else if (input.key instanceof Uint8Array) {
    if (input.key.byteLength !== 32)
      throw invalid('sseCustomerKey', `sseCustomerKey.key must be 32 bytes (AES-256), not ${input.key.byteLength}`)
    bytes = new Uint8Array(input.key)
  } else {
    throw invalid('sseCustomerKey', 'sseCustomerKey.key must be 32 bytes (a Uint8Array) or their base64')
  }
  const md5 = createHash('md5').update(bytes).digest('base64')
  if (input.keyMd5 !== undefined && input.keyMd5 !== md5) {
    throw invalid('sseCustomerKey', 'sseCustomerKey.keyMd5 is not the MD5 of sseCustomerKey.key')
  }
  return new CustomerKey(bytes, md5)
}

/** A checked SSE-C key that prints as its MD5 only; see {@link normalizeSseCustomerKey}. */
export class CustomerKey implements SseCustomerKey {
  readonly #bytes: Uint8Array
  readonly #md5: string

  /** Use {@link normalizeSseCustomerKey}. */
  constructor(bytes: Uint8Array, md5: string) {
    this.#bytes = bytes
    this.#md5 = md5
  }

  /** The 32 key bytes. */
  get key(): Uint8Array {
    return this.#bytes
  }

  /** The key's MD5, base64. */
  get keyMd5(): string {
    return this.#md5
  }

  get algorithm(): 'AES256' {
    return 'AES256'
  }

  toJSON(): { algorithm: 'AES256'; keyMd5: string } {
    return { algorithm: 'AES256', keyMd5: this.#md5 }
  }

  toString(): string {
    return `SseCustomerKey(AES256, md5 ${this.#md5})`
  }

  [inspect.custom](): string {
    return this.toString()
  }
}

function checkHeaderValue(option: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '' || !HEADER_VALUE.test(value)) {
    throw invalid(option, `${option} must be a non-empty string of printable ASCII, not ${describe(value)}`)
  }
}

function invalid(option: string, message: string): ConfigurationError {
  return new ConfigurationError(message, { option })
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : String(value)
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}
