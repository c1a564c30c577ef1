/**
 * `probeServer`: measures what an S3 server guarantees, by trying it, under a scratch prefix of
 * its own that it always empties (objects deleted, multipart uploads aborted), also when a check
 * fails or the signal fires. It checks conditional PutObject (`If-None-Match: *`, `If-Match` with
 * the quoted and the bare ETag, `If-Match` on a missing key), conditional CompleteMultipartUpload
 * (`If-None-Match` and `If-Match`), the ETag in the completion's answer, the minimum part size, the
 * largest single PUT up to a bound, ranged GETs (and 416 past the end), `If-Match` on GET,
 * DeleteObjects (and its limit of keys), and ListObjectsV2 paging.
 *
 * It resolves to the {@link ServerCapabilities} (what the library picks its strategy from), each
 * check's question and answer with the HTTP statuses seen, and {@link libraryBehaviour}: what the
 * library does on that server, in words. `probeServerOnce` probes once per `S3Client` and keeps
 * the answer for as long as the client lives. Every probe also tells the library's writes through
 * that client what it found (the `If-Match` form, conditions on multipart completions, the single-PUT
 * limit; see `rememberServerCapabilities`).
 *
 * It sends about 70 requests and uploads at most about twice `maxSinglePutBound` (64 MiB by default) plus
 * 5 MiB; lower the bound to probe a remote server quickly.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { probeServer } from '@s3exchange/core'
 *
 * const probe = await probeServer({ client: new S3Client({}), bucket: 'my-bucket' }, { prefix: 'tmp/' })
 * console.log(probe.capabilities.conditionalPut)          // 'both' on AWS S3, 'bare' on Ceph RGW 16
 * for (const { topic, verdict, text } of probe.behaviour) console.log(`${topic} [${verdict}] ${text}`)
 * ```
 */
import { randomBytes } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { S3RequestError } from '../format/errors.js'
import type { S3Context } from './context.js'
import { unquoteEtag } from './requests.js'
import {
  type ConditionalPutForm,
  type ConditionOutcome,
  formatSize,
  type LibraryBehaviour,
  libraryBehaviour,
  type ServerCapabilities,
} from './server-capabilities.js'
import { recordProbedCapabilities } from './server-knowledge.js'

/** Options for {@link probeServer}. */
export interface ProbeServerOptions {
  /**
   * Where to write: the scratch prefix is `<prefix>.s3x-probe-<random>/`, so give a prefix you
   * may write under, ending in `/` for a folder. Default: the bucket's root.
   */
  prefix?: string
  /** The largest single PutObject tried, in bytes (the probe uploads about twice that). Default 64 MiB. */
  maxSinglePutBound?: number
}

/** One check of the probe, for people: what was asked, and what the server answered. */
export interface ProbeCheck {
  /** The capability it measures (a field of `ServerCapabilities`). */
  id: keyof ServerCapabilities
  /** What was tried, e.g. `PutObject If-None-Match: * over an existing key`. */
  check: string
  /** What the server did, with the HTTP statuses seen, e.g. `honoured (412)`. */
  result: string
}

/** What {@link probeServer} found. */
export interface ServerProbe {
  /** The bucket probed. */
  bucket: string
  /** The scratch prefix used (empty again when the probe returns). */
  scratchPrefix: string
  /** The server's capabilities. */
  capabilities: ServerCapabilities
  /** Each check, in the order run. */
  checks: ProbeCheck[]
  /** What the library does on this server (see `libraryBehaviour`). */
  behaviour: LibraryBehaviour[]
}

const MiB = 1024 * 1024
const DEFAULT_MAX_SINGLE_PUT_BOUND = 64 * MiB
/** S3's documented smallest part but the last. */
const S3_MIN_PART_SIZE = 5 * MiB
/** An ETag no object has. */
const STALE_ETAG = '0123456789abcdef0123456789abcdef'

/** The answer to one request: its HTTP status (undefined when none came) and what it returned or threw. */
type Answer<T> =
  | { ok: true; status: number; value: T }
  | { ok: false; status: number | undefined; code: string | undefined; error: unknown }

/** Probes the server behind `ctx.client` in `ctx.bucket`; see the module comment. */
export async function probeServer(ctx: S3Context, options: ProbeServerOptions = {}): Promise<ServerProbe> {
  const bound = options.maxSinglePutBound ?? DEFAULT_MAX_SINGLE_PUT_BOUND
  if (!(Number.isSafeInteger(bound) && bound >= MiB))
    throw new TypeError(`maxSinglePutBound must be an integer of at least 1 MiB, not ${bound}`)
  const scratchPrefix = `${options.prefix ?? ''}.s3x-probe-${randomBytes(6).toString('hex')}/`
  const probe = new Probe(ctx, scratchPrefix)
  let capabilities: ServerCapabilities
  try {
    capabilities = await probe.run(bound)
  } catch (error) {
    // The failure is what to report; the clean-up does what it can.
    await probe.cleanUp().catch(() => {})
    throw error
  }
  await probe.cleanUp()
  // What writes through this client pick their strategy from (the If-Match form, conditional multipart).
  recordProbedCapabilities(ctx.client, capabilities)
  return { bucket: ctx.bucket, scratchPrefix, capabilities, checks: probe.checks, behaviour: libraryBehaviour(capabilities) }
}

const probes = new WeakMap<S3Client, Promise<ServerProbe>>()

/**
 * {@link probeServer}, once per client: the first call probes, later calls with the same
 * `ctx.client` get the same answer (whatever their bucket: a client talks to one server). A probe
 * that failed is not kept: the next call probes again.
 */
export function probeServerOnce(ctx: S3Context, options: ProbeServerOptions = {}): Promise<ServerProbe> {
  let probe = probes.get(ctx.client)
  if (probe === undefined) {
    probe = probeServer(ctx, options)
    probes.set(ctx.client, probe)
    probe.catch(() => {
      if (probes.get(ctx.client) === probe) probes.delete(ctx.client)
    })
  }
  return probe
}

class Probe {
  readonly checks: ProbeCheck[] = []
  readonly #ctx: S3Context
  readonly #prefix: string
  readonly #uploads = new Map<string, string>()
  #serial = 0

  constructor(ctx: S3Context, prefix: string) {
    this.#ctx = ctx
    this.#prefix = prefix
  }

  async run(bound: number): Promise<ServerCapabilities> {
    const puts = await this.#conditionalPuts()
    const completes = await this.#conditionalCompletes(puts.conditionalPut)
    const minPartSize = await this.#minPartSize()
    const single = await this.#maxSinglePut(bound)
    const ranges = await this.#rangedGets()
    const lists = await this.#listing()
    const deletes = await this.#deletes()
    return { ...puts, ...completes, minPartSize, ...single, ...ranges, ...lists, ...deletes }
  }

  // ------------------------------------------------------------------------------ conditional PUT

  async #conditionalPuts(): Promise<Pick<ServerCapabilities, 'putIfNoneMatch' | 'conditionalPut' | 'putIfMatchMissing'>> {
    const key = this.#key('conditional-put')
    await this.#mustPut(key, 'version 1')

    // If-None-Match: * on a new key must be written; over an existing one, refused with 412.
    const fresh = await this.#put(this.#key('if-none-match-new'), 'new', { IfNoneMatch: '*' })
    const existing = await this.#put(key, 'version 2', { IfNoneMatch: '*' })
    const putIfNoneMatch = !fresh.ok ? 'refused' : outcome(existing)
    this.#record('putIfNoneMatch', 'PUT If-None-Match: * (new key; existing key)', `${putIfNoneMatch} (${statuses(fresh, existing)})`)

    // If-Match with a stale ETag must be refused, with the current one written; in either form.
    const quotedStale = await this.#put(key, 'version 3', { IfMatch: `"${STALE_ETAG}"` })
    const quotedCurrent = await this.#put(key, 'version 4', { IfMatch: `"${await this.#etag(key)}"` })
    const bareStale = await this.#put(key, 'version 5', { IfMatch: STALE_ETAG })
    const bareCurrent = await this.#put(key, 'version 6', { IfMatch: await this.#etag(key) })
    const quoted = isRefusal(quotedStale) && quotedCurrent.ok
    const bare = isRefusal(bareStale) && bareCurrent.ok
    const conditionalPut: ConditionalPutForm = quoted && bare ? 'both' : quoted ? 'quoted' : bare ? 'bare' : 'none'
    this.#record(
      'conditionalPut',
      'PUT If-Match "etag" / etag (stale; current)',
      `${conditionalPut} ("etag": ${statuses(quotedStale, quotedCurrent)}; etag: ${statuses(bareStale, bareCurrent)})`,
    )

    const missingKey = this.#key('if-match-missing')
    const missing = await this.#put(missingKey, 'never', { IfMatch: ifMatchValue(conditionalPut, STALE_ETAG) })
    const putIfMatchMissing = missing.ok ? 'written' : (missing.status ?? 0)
    this.#record(
      'putIfMatchMissing',
      'PUT If-Match on a missing key',
      missing.ok ? `written (${status(missing)})` : `refused (${status(missing)})`,
    )
    return { putIfNoneMatch, conditionalPut, putIfMatchMissing }
  }

  // ------------------------------------------------------------------------- conditional complete

  async #conditionalCompletes(
    form: ConditionalPutForm,
  ): Promise<Pick<ServerCapabilities, 'completeIfNoneMatch' | 'completeIfMatch' | 'conditionalComplete' | 'completeEtag'>> {
    const key = this.#key('conditional-complete')
    // Created by a completion with If-None-Match: * on a new key: it must be written, with an ETag in the answer.
    const created = await this.#multipart(key, [Buffer.from('created')], { IfNoneMatch: '*' })
    const completeEtag = created.ok && unquote(created.value.ETag) !== ''
    this.#record(
      'completeEtag',
      'Complete: ETag in the answer',
      created.ok
        ? completeEtag
          ? `yes (${created.value.ETag})`
          : `no (the answer's ETag is ${JSON.stringify(created.value.ETag ?? null)})`
        : `no completion (${status(created)})`,
    )
    const overwritten = await this.#multipart(key, [Buffer.from('over an existing key')], { IfNoneMatch: '*' })
    const completeIfNoneMatch = !created.ok ? 'refused' : outcome(overwritten)
    this.#record(
      'completeIfNoneMatch',
      'Complete If-None-Match: * (new; existing)',
      `${completeIfNoneMatch} (${statuses(created, overwritten)})`,
    )

    const stale = await this.#multipart(key, [Buffer.from('stale')], { IfMatch: ifMatchValue(form, STALE_ETAG) })
    let completeIfMatch = outcome(stale)
    let detail = `stale ${status(stale)}`
    if (completeIfMatch === 'honoured') {
      const current = await this.#multipart(key, [Buffer.from('current')], { IfMatch: ifMatchValue(form, await this.#etag(key)) })
      if (!current.ok) completeIfMatch = 'refused'
      detail += `, current ${status(current)}`
    }
    this.#record(
      'completeIfMatch',
      `Complete If-Match ${form === 'bare' ? 'etag' : '"etag"'} (stale; current)`,
      `${completeIfMatch} (${detail})`,
    )
    const conditionalComplete = completeIfNoneMatch === 'honoured' && completeIfMatch === 'honoured'
    this.#record('conditionalComplete', 'Conditional multipart commit', conditionalComplete ? 'yes' : 'no')
    return { completeIfNoneMatch, completeIfMatch, conditionalComplete, completeEtag }
  }

  // ---------------------------------------------------------------------------------- part sizes

  async #minPartSize(): Promise<number | null> {
    const key = this.#key('min-part-size')
    const tiny = await this.#multipart(key, [Buffer.from('a'), Buffer.from('b')])
    if (tiny.ok) {
      this.#record('minPartSize', 'Non-last part of 1 B', `accepted (${status(tiny)}): no minimum enforced`)
      return 1
    }
    const s3Minimum = await this.#multipart(key, [Buffer.alloc(S3_MIN_PART_SIZE), Buffer.from('b')])
    const minPartSize = s3Minimum.ok ? S3_MIN_PART_SIZE : null
    this.#record(
      'minPartSize',
      'Non-last part of 1 B; of 5 MiB',
      `1 B refused (${status(tiny)}); 5 MiB ${s3Minimum.ok ? 'accepted' : 'refused'} (${status(s3Minimum)})`,
    )
    return minPartSize
  }

  async #maxSinglePut(bound: number): Promise<Pick<ServerCapabilities, 'maxSinglePut' | 'maxSinglePutRefused'>> {
    const key = this.#key('single-put')
    const tried: string[] = []
    const accepts = async (size: number): Promise<boolean> => {
      const answer = await this.#put(key, Buffer.alloc(size), {}, { refusalsOnly: false })
      tried.push(`${formatSize(size)} ${answer.ok ? 'taken' : `refused (${status(answer)})`}`)
      if (answer.ok)
        await this.#send('DeleteObject', key, (o) =>
          this.#ctx.client.send(new DeleteObjectCommand({ Bucket: this.#ctx.bucket, Key: key }), o),
        )
      return answer.ok
    }
    if (await accepts(bound)) {
      this.#record('maxSinglePut', `Largest single PUT (up to ${formatSize(bound)})`, `at least ${formatSize(bound)}`)
      return { maxSinglePut: bound, maxSinglePutRefused: null }
    }
    // Halve down to 1 MiB, then narrow between the largest taken and the smallest refused, to the MiB.
    let taken = 0
    let refused = bound
    for (let size = mebibytes(bound / 2); size >= MiB; size = mebibytes(size / 2)) {
      if (await accepts(size)) {
        taken = size
        break
      }
      refused = size
    }
    while (taken > 0 && refused - taken > MiB) {
      const middle = taken + mebibytes((refused - taken) / 2)
      if (await accepts(middle)) taken = middle
      else refused = middle
    }
    this.#record(
      'maxSinglePut',
      `Largest single PUT (up to ${formatSize(bound)})`,
      `${formatSize(taken)} (${formatSize(refused)} refused); tried ${tried.join(', ')}`,
    )
    return { maxSinglePut: taken, maxSinglePutRefused: refused }
  }

  // -------------------------------------------------------------------------------------- reads

  async #rangedGets(): Promise<Pick<ServerCapabilities, 'rangedGet' | 'rangePastEnd' | 'getIfMatch'>> {
    const key = this.#key('ranges')
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251))
    await this.#mustPut(key, bytes)
    const ranges: [string, number, number][] = [
      ['bytes=10-19', 10, 20],
      ['bytes=990-', 990, 1000],
      ['bytes=-10', 990, 1000],
    ]
    const seen: string[] = []
    let rangedGet = true
    for (const [range, from, to] of ranges) {
      const answer = await this.#get(key, { Range: range })
      const right =
        answer.ok &&
        answer.status === 206 &&
        answer.value.contentRange === `bytes ${from}-${to - 1}/1000` &&
        Buffer.compare(answer.value.body, bytes.subarray(from, to)) === 0
      if (!right) rangedGet = false
      seen.push(
        `${range}: ${answer.ok ? `${answer.status}${answer.value.contentRange ? ` ${answer.value.contentRange}` : ''}` : status(answer)}${right ? '' : ' (wrong)'}`,
      )
    }
    this.#record(
      'rangedGet',
      'GET Range a-b; a-; -n',
      rangedGet ? 'yes (206, the bytes asked for, Content-Range right)' : `no (${seen.join('; ')})`,
    )

    const pastEnd = await this.#get(key, { Range: 'bytes=2000-2010' })
    const rangePastEnd = pastEnd.status ?? 0
    this.#record('rangePastEnd', 'GET Range past the end', String(rangePastEnd))

    const etag = await this.#etag(key)
    const current = await this.#get(key, { IfMatch: `"${etag}"` })
    const stale = await this.#get(key, { IfMatch: `"${STALE_ETAG}"` })
    const getIfMatch = current.ok && current.status === 200 && !stale.ok && stale.status === 412
    this.#record(
      'getIfMatch',
      'GET If-Match "etag" (current; stale)',
      `${getIfMatch ? 'honoured' : 'not honoured'} (${statuses(current, stale)})`,
    )
    return { rangedGet, rangePastEnd, getIfMatch }
  }

  // --------------------------------------------------------------------------- listing, deletes

  async #listing(): Promise<Pick<ServerCapabilities, 'listPaging' | 'listMaxKeys'>> {
    const prefix = this.#key('list/')
    const keys = ['a', 'b', 'c'].map((name) => `${prefix}${name}`)
    for (const key of keys) await this.#mustPut(key, key)
    const first = await this.#list(prefix, 2)
    const second = first.NextContinuationToken ? await this.#list(prefix, 2, first.NextContinuationToken) : undefined
    const pages = [first, second].map((page) => (page?.Contents ?? []).map((object) => object.Key))
    const listPaging =
      first.IsTruncated === true &&
      second !== undefined &&
      second.IsTruncated !== true &&
      JSON.stringify(pages.flat()) === JSON.stringify(keys)
    this.#record(
      'listPaging',
      'ListObjectsV2 paging (MaxKeys 2, 3 keys)',
      `${listPaging ? 'yes' : 'no'} (pages of ${pages.map((page) => page.length).join(' and ')} keys)`,
    )
    const wide = await this.#list(prefix, 10_000)
    const listMaxKeys = wide.MaxKeys !== undefined && wide.MaxKeys < 10_000 ? wide.MaxKeys : null
    this.#record(
      'listMaxKeys',
      'ListObjectsV2 MaxKeys 10000 answered as',
      wide.MaxKeys === undefined ? 'none answered' : `${wide.MaxKeys}${listMaxKeys === null ? ' (no cap shown)' : ' (its cap)'}`,
    )
    return { listPaging, listMaxKeys }
  }

  async #deletes(): Promise<Pick<ServerCapabilities, 'deleteObjects' | 'deleteObjectsMaxKeys'>> {
    const prefix = this.#key('delete/')
    const keys = ['a', 'b', 'c'].map((name) => `${prefix}${name}`)
    for (const key of keys) await this.#mustPut(key, key)
    const deleted = await this.#deleteObjects(keys)
    const left = await this.#list(prefix, 10)
    const deleteObjects = deleted.ok && (deleted.value.Errors ?? []).length === 0 && (left.Contents ?? []).length === 0
    this.#record(
      'deleteObjects',
      'DeleteObjects (3 keys)',
      `${deleteObjects ? 'yes' : 'no'} (${status(deleted)}; ${(left.Contents ?? []).length} of 3 keys left)`,
    )
    // 1,001 keys that do not exist: a server that keeps to S3's limit refuses the request (400).
    const many = await this.#deleteObjects(Array.from({ length: 1001 }, (_, i) => `${prefix}none-${i}`))
    const deleteObjectsMaxKeys = many.ok ? null : 1000
    this.#record(
      'deleteObjectsMaxKeys',
      'DeleteObjects (1,001 keys)',
      many.ok ? `taken (${status(many)}): more than 1,000` : `refused (${status(many)}): at most 1,000`,
    )
    return { deleteObjects, deleteObjectsMaxKeys }
  }

  // ------------------------------------------------------------------------------------ clean-up

  /** Aborts the uploads it started and deletes every object under the scratch prefix. */
  async cleanUp(): Promise<void> {
    const { client, bucket } = this.#ctx
    const failures: unknown[] = []
    const attempt = async (work: () => Promise<unknown>) => {
      try {
        await work()
      } catch (error) {
        failures.push(error)
      }
    }
    for (const [uploadId, key] of this.#uploads) {
      await attempt(() => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })))
    }
    await attempt(async () => {
      const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: this.#prefix }))
      for (const upload of open.Uploads ?? []) {
        await attempt(() => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId })))
      }
    })
    await attempt(async () => {
      let token: string | undefined
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: this.#prefix, ContinuationToken: token }))
        for (const object of page.Contents ?? []) {
          if (object.Key) await attempt(() => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key })))
        }
        token = page.NextContinuationToken
      } while (token)
    })
    if (failures.length > 0 && !this.#ctx.signal?.aborted) {
      throw new S3RequestError('probe clean-up', this.#prefix, failures[0])
    }
  }

  // -------------------------------------------------------------------------------------- requests

  #key(name: string): string {
    return `${this.#prefix}${String(++this.#serial).padStart(2, '0')}-${name}`
  }

  #record(id: keyof ServerCapabilities, check: string, result: string): void {
    this.checks.push({ id, check, result })
  }

  /**
   * Sends a request and returns its answer, success or HTTP error. A failure that says nothing
   * about the server's capabilities (no access, the signal fired, no answer at all unless
   * `refusalsOnly` is false) is thrown as an `S3RequestError`.
   */
  async #send<T extends { $metadata?: { httpStatusCode?: number } }>(
    operation: string,
    key: string,
    request: (options: { abortSignal: AbortSignal | undefined }) => Promise<T>,
    options: { refusalsOnly?: boolean } = {},
  ): Promise<Answer<T>> {
    try {
      const value = await request({ abortSignal: this.#ctx.signal })
      return { ok: true, status: value.$metadata?.httpStatusCode ?? 200, value }
    } catch (error) {
      this.#ctx.signal?.throwIfAborted()
      const detail = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } }
      const code = detail.Code ?? detail.name
      const httpStatus = detail.$metadata?.httpStatusCode
      const noAnswer = httpStatus === undefined && (options.refusalsOnly ?? true)
      if (noAnswer || httpStatus === 401 || httpStatus === 403 || code === 'NoSuchBucket') throw new S3RequestError(operation, key, error)
      return { ok: false, status: httpStatus, code, error }
    }
  }

  async #put(
    key: string,
    body: string | Uint8Array,
    conditions: { IfMatch?: string; IfNoneMatch?: string } = {},
    options?: { refusalsOnly?: boolean },
  ) {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body
    return this.#send(
      'PutObject',
      key,
      (o) =>
        this.#ctx.client.send(
          new PutObjectCommand({ Bucket: this.#ctx.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength, ...conditions }),
          o,
        ),
      options,
    )
  }

  async #mustPut(key: string, body: string | Uint8Array): Promise<void> {
    const answer = await this.#put(key, body)
    if (!answer.ok) throw new S3RequestError('PutObject', key, answer.error)
  }

  /** The object's ETag, unquoted, from a HEAD. */
  async #etag(key: string): Promise<string> {
    const head = await this.#send('HeadObject', key, (o) =>
      this.#ctx.client.send(new HeadObjectCommand({ Bucket: this.#ctx.bucket, Key: key }), o),
    )
    if (!head.ok) throw new S3RequestError('HeadObject', key, head.error)
    return unquote(head.value.ETag)
  }

  async #get(
    key: string,
    headers: { Range?: string; IfMatch?: string },
  ): Promise<Answer<{ body: Buffer; contentRange: string | undefined }>> {
    const answer = await this.#send('GetObject', key, (o) =>
      this.#ctx.client.send(new GetObjectCommand({ Bucket: this.#ctx.bucket, Key: key, ...headers }), o),
    )
    if (!answer.ok) return answer
    const body = Buffer.from((await answer.value.Body?.transformToByteArray()) ?? new Uint8Array(0))
    return { ok: true, status: answer.status, value: { body, contentRange: answer.value.ContentRange } }
  }

  async #list(prefix: string, maxKeys: number, token?: string) {
    const answer = await this.#send('ListObjectsV2', prefix, (o) =>
      this.#ctx.client.send(
        new ListObjectsV2Command({ Bucket: this.#ctx.bucket, Prefix: prefix, MaxKeys: maxKeys, ContinuationToken: token }),
        o,
      ),
    )
    if (!answer.ok) throw new S3RequestError('ListObjectsV2', prefix, answer.error)
    return answer.value
  }

  async #deleteObjects(keys: string[]) {
    return this.#send('DeleteObjects', keys[0] ?? this.#prefix, (o) =>
      this.#ctx.client.send(
        new DeleteObjectsCommand({ Bucket: this.#ctx.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
        o,
      ),
    )
  }

  /** A multipart upload of `parts` to `key`, completed with `conditions`; aborted when a part or the completion fails. */
  async #multipart(
    key: string,
    parts: Uint8Array[],
    conditions: { IfMatch?: string; IfNoneMatch?: string } = {},
  ): Promise<Answer<{ ETag?: string }>> {
    const { bucket } = this.#ctx
    const created = await this.#send('CreateMultipartUpload', key, (o) =>
      this.#ctx.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), o),
    )
    if (!created.ok || !created.value.UploadId)
      throw new S3RequestError('CreateMultipartUpload', key, created.ok ? new Error('no UploadId') : created.error)
    const uploadId = created.value.UploadId
    this.#uploads.set(uploadId, key)
    const done: { PartNumber: number; ETag: string | undefined }[] = []
    for (const [index, body] of parts.entries()) {
      const part = await this.#send('UploadPart', key, (o) =>
        this.#ctx.client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: index + 1,
            Body: body,
            ContentLength: body.byteLength,
          }),
          o,
        ),
      )
      if (!part.ok) return this.#abort(key, uploadId, part)
      done.push({ PartNumber: index + 1, ETag: part.value.ETag })
    }
    const completed = await this.#send('CompleteMultipartUpload', key, (o) =>
      this.#ctx.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: done },
          ...conditions,
        }),
        o,
      ),
    )
    if (completed.ok) {
      this.#uploads.delete(uploadId)
      return completed
    }
    return this.#abort(key, uploadId, completed)
  }

  /** Aborts an upload whose completion failed (the clean-up tries again if this fails) and returns `answer`. */
  async #abort<T>(key: string, uploadId: string, answer: T): Promise<T> {
    const aborted = await this.#send('AbortMultipartUpload', key, (o) =>
      this.#ctx.client.send(new AbortMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: key, UploadId: uploadId }), o),
    )
    if (aborted.ok) this.#uploads.delete(uploadId)
    return answer
  }
}

/** A write's outcome under a condition that did not hold: refused with 412 (honoured), written (ignored), or another error. */
function outcome(answer: Answer<unknown>): ConditionOutcome {
  if (answer.ok) return 'ignored'
  return answer.status === 412 ? 'honoured' : 'refused'
}

function isRefusal(answer: Answer<unknown>): boolean {
  return !answer.ok && answer.status === 412
}

/** The If-Match value in the form the server honours (quoted unless only bare works). */
function ifMatchValue(form: ConditionalPutForm, etag: string): string {
  return form === 'bare' ? etag : `"${etag}"`
}

function status(answer: Answer<unknown>): string {
  if (answer.ok) return String(answer.status)
  if (answer.status === undefined) return `no answer: ${(answer.error as Error)?.message ?? answer.error}`
  // The error code, where it says more than the status (412 is always PreconditionFailed).
  const code = answer.code && answer.code !== 'Unknown' && answer.code !== 'Error' && answer.status !== 412 ? ` ${answer.code}` : ''
  return `${answer.status}${code}`
}

function statuses(...answers: Answer<unknown>[]): string {
  return answers.map(status).join(', ')
}

/** Whole MiBs in `bytes`, in bytes. */
function mebibytes(bytes: number): number {
  return Math.floor(bytes / MiB) * MiB
}

function unquote(etag: string | undefined): string {
  return unquoteEtag(etag) ?? ''
}
