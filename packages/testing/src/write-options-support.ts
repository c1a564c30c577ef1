/**
 * What tests of write options need: which S3 operation a request the proxy recorded is
 * (`s3Operation`, and the object key it names: `requestKey`), and what a server does with each
 * option (`probeWriteOptions`): whether it accepts it, and whether it stores it so that it can be
 * read back. The probe writes a few tiny objects with the raw SDK (not through s3exchange), so a
 * test can assert through s3exchange wherever the server keeps an option, and skip, naming the
 * server feature, where it does not. Servers differ a lot here: fauxqs 2.4 keeps metadata,
 * Cache-Control and Content-Encoding and ignores storage classes, tags, ACLs and every kind of
 * encryption; Ceph RGW 16 keeps storage classes it has (`STANDARD` only by default), tags (on
 * single PUTs), ACLs and metadata, and refuses encryption over plain HTTP unless
 * `rgw_crypt_require_ssl` is off.
 *
 * @example
 * ```ts
 * import { probeWriteOptions, s3Operation, startS3Proxy } from '@s3exchange/testing'
 *
 * const support = await probeWriteOptions(s3.client, bucket, 'probe')
 * it.skipIf(!support.tagsStored)('tags are read back (needs a server that stores tags)', async () => { … })
 * const writes = proxy.requests.filter((r) => s3Operation(r) === 'PutObject' || s3Operation(r) === 'CreateMultipartUpload')
 * ```
 *
 * (Over 300 lines on purpose: largely a declarative table of each write option's headers and how to
 * read it back.)
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import type { ProxiedRequest } from './proxy-types.js'

/** The S3 operations s3exchange sends, as a proxied request shows them; `other` for the rest. */
export type S3Operation =
  | 'PutObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'DeleteObjects'
  | 'ListObjectsV2'
  | 'other'

/** Which S3 operation a request is, from its method and query (path-style requests). */
export function s3Operation(request: Pick<ProxiedRequest, 'method' | 'url'>): S3Operation {
  const url = new URL(request.url, 'http://proxy')
  const query = url.searchParams
  const onObject = url.pathname.split('/').filter(Boolean).length >= 2
  for (const sub of ['tagging', 'acl', 'retention', 'legal-hold', 'attributes', 'restore', 'select']) if (query.has(sub)) return 'other'
  switch (request.method) {
    case 'PUT':
      if (query.has('partNumber') && query.has('uploadId')) return 'UploadPart'
      return onObject ? 'PutObject' : 'other'
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload'
      if (query.has('uploadId')) return 'CompleteMultipartUpload'
      if (query.has('delete')) return 'DeleteObjects'
      return 'other'
    case 'GET':
      if (!onObject) return query.get('list-type') === '2' ? 'ListObjectsV2' : 'other'
      return query.has('uploadId') ? 'other' : 'GetObject'
    case 'HEAD':
      return onObject ? 'HeadObject' : 'other'
    case 'DELETE':
      if (query.has('uploadId')) return 'AbortMultipartUpload'
      return onObject ? 'DeleteObject' : 'other'
    default:
      return 'other'
  }
}

/** The object key a path-style request names (decoded), or undefined for a request on the bucket. */
export function requestKey(request: Pick<ProxiedRequest, 'url'>): string | undefined {
  const path = new URL(request.url, 'http://proxy').pathname
  const slash = path.indexOf('/', 1)
  if (slash === -1 || slash === path.length - 1) return undefined
  return decodeURIComponent(path.slice(slash + 1))
}

/**
 * Write options as the requests carry them: a structural copy of the fields of s3exchange's
 * `WriteOptions` (this package does not depend on s3exchange), for {@link expectedOptionHeaders}.
 */
export interface WriteOptionsSent {
  storageClass?: string | undefined
  serverSideEncryption?: string | undefined
  sseKmsKeyId?: string | undefined
  bucketKeyEnabled?: boolean | undefined
  /** The SSE-C key's bytes (or an object holding them as `key`: 32 bytes or their base64). */
  sseCustomerKey?: { key: Uint8Array | string } | null | undefined
  metadata?: Readonly<Record<string, string>> | undefined
  /** As the request sends it: URL-encoded (an object is encoded with `encodeURIComponent`). */
  tagging?: Readonly<Record<string, string>> | string | undefined
  cacheControl?: string | undefined
  contentEncoding?: string | undefined
  acl?: string | undefined
}

/** Headers that carry write options (storage class, encryption, metadata, tags, caching, encoding, ACL). */
const OPTION_HEADER =
  /^(x-amz-storage-class|x-amz-server-side-encryption.*|x-amz-meta-.*|x-amz-tagging|cache-control|content-encoding|x-amz-acl)$/

/** The write-option headers a recorded request carries (names lowercased, as Node gives them). */
export function optionHeaders(request: Pick<ProxiedRequest, 'headers'>): Record<string, string> {
  const found: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (OPTION_HEADER.test(name) && value !== undefined) found[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return found
}

/**
 * The write-option headers a request of a write made with `options` must carry: every option on
 * PutObject and CreateMultipartUpload; the SSE-C key alone on UploadPart, CompleteMultipartUpload,
 * GetObject and HeadObject; none on anything else (listing, deleting, aborting).
 */
export function expectedOptionHeaders(request: Pick<ProxiedRequest, 'method' | 'url'>, options: WriteOptionsSent): Record<string, string> {
  const operation = s3Operation(request)
  if (operation === 'PutObject' || operation === 'CreateMultipartUpload')
    return { ...objectOptionHeaders(options), ...customerKeyHeaders(options) }
  if (['UploadPart', 'CompleteMultipartUpload', 'GetObject', 'HeadObject'].includes(operation)) return customerKeyHeaders(options)
  return {}
}

function objectOptionHeaders(options: WriteOptionsSent): Record<string, string> {
  const headers: Record<string, string> = {}
  if (options.storageClass) headers['x-amz-storage-class'] = options.storageClass
  if (options.serverSideEncryption) headers['x-amz-server-side-encryption'] = options.serverSideEncryption
  if (options.sseKmsKeyId) headers['x-amz-server-side-encryption-aws-kms-key-id'] = options.sseKmsKeyId
  if (options.bucketKeyEnabled !== undefined) headers['x-amz-server-side-encryption-bucket-key-enabled'] = String(options.bucketKeyEnabled)
  for (const [name, value] of Object.entries(options.metadata ?? {})) headers[`x-amz-meta-${name.toLowerCase()}`] = value
  const tagging =
    typeof options.tagging === 'string'
      ? options.tagging
      : Object.entries(options.tagging ?? {})
          .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
          .join('&')
  if (tagging) headers['x-amz-tagging'] = tagging
  if (options.cacheControl) headers['cache-control'] = options.cacheControl
  if (options.contentEncoding) headers['content-encoding'] = options.contentEncoding
  if (options.acl) headers['x-amz-acl'] = options.acl
  return headers
}

/** The three SSE-C headers of the key in `options`, none without one. */
export function customerKeyHeaders(options: Pick<WriteOptionsSent, 'sseCustomerKey'>): Record<string, string> {
  const given = options.sseCustomerKey?.key
  if (given === undefined) return {}
  const key = typeof given === 'string' ? Buffer.from(given, 'base64') : Buffer.from(given)
  return {
    'x-amz-server-side-encryption-customer-algorithm': 'AES256',
    'x-amz-server-side-encryption-customer-key': key.toString('base64'),
    'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(key).digest('base64'),
  }
}

/** What a server does with one kind of server-side encryption. */
export type EncryptionSupport =
  /** Written, and reported back on HEAD (SSE-S3, SSE-KMS); for SSE-C, a read without the key is refused. */
  | 'enforced'
  /** Written, but not reported back (or, for SSE-C, readable without the key): the option is ignored. */
  | 'ignored'
  /** The write is refused (for lack of TLS, of a KMS, of support). */
  | 'refused'

/** What `probeWriteOptions` found. */
export interface WriteOptionSupport {
  /**
   * A storage class the server accepts and reports back on HEAD, other than what it reports for an
   * object written without one: `STANDARD_IA` where it has it, else `STANDARD` where it reports an
   * explicit one; undefined when it ignores the header.
   */
  storedStorageClass: string | undefined
  /** A storage class the server accepts on PutObject (`STANDARD_IA`, else `STANDARD`), for tests of the headers sent. */
  acceptedStorageClass: string
  /** User metadata read back from HEAD. */
  metadataStored: boolean
  /** Cache-Control and Content-Encoding read back from HEAD. */
  headersStored: boolean
  /** Tags of a single PutObject read back with GetObjectTagging. */
  tagsStored: boolean
  /** Tags given at CreateMultipartUpload read back with GetObjectTagging. */
  multipartTagsStored: boolean
  /** A storage class given at CreateMultipartUpload reported back on HEAD (`storedStorageClass`). */
  multipartStorageClassStored: boolean
  /** A canned ACL (`public-read`) read back with GetObjectAcl. */
  aclStored: boolean
  /** SSE-S3 (`AES256`). */
  sseS3: EncryptionSupport
  /** SSE-KMS (`aws:kms`, with `kmsKeyId` when given, else the server's default key). */
  sseKms: EncryptionSupport
  /** SSE-C with a random key. */
  sseC: EncryptionSupport
}

/** Options for {@link probeWriteOptions}. */
export interface ProbeWriteOptionsOptions {
  /**
   * The KMS key to try SSE-KMS with (servers without a default key, such as Ceph RGW with its
   * `testing` KMS backend, refuse `aws:kms` without one). Default: none, the server's default key.
   */
  kmsKeyId?: string | undefined
}

/**
 * Measures what the server behind `client` does with each write option, by writing tiny objects
 * under `prefix` with the raw SDK and reading them back; deletes them at the end. A few dozen
 * requests.
 */
export async function probeWriteOptions(
  client: S3Client,
  bucket: string,
  prefix: string,
  options: ProbeWriteOptionsOptions = {},
): Promise<WriteOptionSupport> {
  const base = `${prefix.replace(/\/+$/, '')}/write-options-probe-${randomBytes(4).toString('hex')}`
  const written: string[] = []
  let n = 0
  const put = async (extra: Partial<PutObjectCommandInput>): Promise<string | undefined> => {
    const key = `${base}/${n++}`
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'probe', ...extra }))
      written.push(key)
      return key
    } catch {
      return undefined
    }
  }
  const head = async (key: string, extra: object = {}) => {
    try {
      return await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...extra }))
    } catch {
      return undefined
    }
  }
  try {
    const plain = (await put({})) as string
    const defaultClass = (await head(plain))?.StorageClass
    let storedStorageClass: string | undefined
    let acceptedStorageClass = 'STANDARD'
    for (const candidate of ['STANDARD_IA', 'STANDARD'] as const) {
      const key = await put({ StorageClass: candidate })
      if (key === undefined) continue
      if (acceptedStorageClass === 'STANDARD' && candidate === 'STANDARD_IA') acceptedStorageClass = candidate
      if ((await head(key))?.StorageClass === candidate && candidate !== defaultClass) {
        storedStorageClass = candidate
        break
      }
    }
    const withHeaders = await put({ Metadata: { probe: 'yes' }, CacheControl: 'max-age=7', ContentEncoding: 'identity' })
    const headers = withHeaders === undefined ? undefined : await head(withHeaders)
    const tagged = await put({ Tagging: 'probe=yes' })
    const acl = await put({ ACL: 'public-read' })
    const multipart = await multipartProbe(client, bucket, `${base}/multipart`, storedStorageClass ?? acceptedStorageClass)
    if (multipart.written) written.push(`${base}/multipart`)
    return {
      storedStorageClass,
      acceptedStorageClass,
      metadataStored: headers?.Metadata?.probe === 'yes',
      headersStored: headers?.CacheControl === 'max-age=7' && headers?.ContentEncoding === 'identity',
      tagsStored: tagged !== undefined && (await tagsOf(client, bucket, tagged)) === 'probe=yes',
      multipartTagsStored: multipart.written && (await tagsOf(client, bucket, `${base}/multipart`)) === 'probe=yes',
      multipartStorageClassStored:
        storedStorageClass !== undefined && multipart.written && (await head(`${base}/multipart`))?.StorageClass === storedStorageClass,
      aclStored: acl !== undefined && (await publicRead(client, bucket, acl)),
      sseS3: await encryption(put, head, { ServerSideEncryption: 'AES256' }, 'AES256'),
      sseKms: await encryption(put, head, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: options.kmsKeyId }, 'aws:kms'),
      sseC: await customerKeyProbe(client, bucket, put),
    }
  } finally {
    if (written.length > 0) {
      await client
        .send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: written.map((Key) => ({ Key })), Quiet: true } }))
        .catch(() => {})
    }
  }
}

async function encryption(
  put: (extra: Partial<PutObjectCommandInput>) => Promise<string | undefined>,
  head: (key: string) => Promise<{ ServerSideEncryption?: string | undefined } | undefined>,
  params: Partial<PutObjectCommandInput>,
  reported: string,
): Promise<EncryptionSupport> {
  const key = await put(params)
  if (key === undefined) return 'refused'
  return (await head(key))?.ServerSideEncryption === reported ? 'enforced' : 'ignored'
}

async function customerKeyProbe(
  client: S3Client,
  bucket: string,
  put: (extra: Partial<PutObjectCommandInput>) => Promise<string | undefined>,
): Promise<EncryptionSupport> {
  const key = randomBytes(32)
  const ssec = {
    SSECustomerAlgorithm: 'AES256',
    SSECustomerKey: key as unknown as string,
    SSECustomerKeyMD5: createHash('md5').update(key).digest('base64'),
  }
  const written = await put(ssec)
  if (written === undefined) return 'refused'
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: written }))
    await response.Body?.transformToByteArray()
    return 'ignored' // read back without the key: the server did not encrypt with it
  } catch {
    return 'enforced'
  }
}

async function multipartProbe(client: S3Client, bucket: string, key: string, storageClass: string): Promise<{ written: boolean }> {
  try {
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        Tagging: 'probe=yes',
        StorageClass: storageClass as PutObjectCommandInput['StorageClass'],
      }),
    )
    const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'probe' }))
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    )
    return { written: true }
  } catch {
    return { written: false }
  }
}

async function tagsOf(client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const { TagSet } = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))
    return (TagSet ?? []).map(({ Key, Value }) => `${Key}=${Value}`).join('&')
  } catch {
    return undefined
  }
}

async function publicRead(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    const { Grants } = await client.send(new GetObjectAclCommand({ Bucket: bucket, Key: key }))
    return (Grants ?? []).some((grant) => grant.Permission === 'READ' && grant.Grantee?.URI?.endsWith('/global/AllUsers'))
  } catch {
    return false
  }
}
