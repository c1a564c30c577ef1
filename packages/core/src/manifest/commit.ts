/**
 * Publishing to a root manifest: the conditional append of entries (the `manifest_ref`s of new
 * parts, named by `partKeyFor`) to a root. The append reads the root and its ETag,
 * then writes it back with the new lines only if it has not changed meanwhile (`If-Match`, in the
 * ETag form the server honours, or `If-None-Match: *` when creating it), in one PutObject whatever
 * its size up to the largest single PUT the server takes (`putBytes`); a root larger than that
 * needs a conditional multipart completion, which is only sent where the server is known to
 * honour it (else `ConditionalWriteUnsupportedError`: nothing written). When another writer got
 * there first (HTTP 412, 409 `ConditionalRequestConflict`, a 404 because the root was deleted, or a
 * read of the root that broke and found it replaced on resuming) it rereads and tries again after a
 * jittered, growing pause; so it does, without counting a lost race, when the server asks to slow
 * down (429, 503 after the SDK's own retries; R2 takes one write per second per key). A write whose answer was lost (the server wrote, the
 * connection broke, the SDK's repeat of it was refused) is recognized on rereading: the root then
 * begins with what was written, and nothing is appended twice. (Were another writer to append the
 * very same lines at that moment, they would be listed once, not twice; the parts of
 * `writeManifestParts` and the ManifestWriter have unique keys, so their refs never coincide.)
 * On servers that enforce conditional
 * writes (AWS S3, MinIO, R2, Ceph RGW, …) concurrent appenders lose nothing; on servers that ignore
 * them it behaves like Python (last writer wins).
 *
 * @example
 * ```ts
 * import { appendToManifest, partKeyFor } from '@s3exchange/core'
 *
 * const part = partKeyFor('training/123/samples/manifest.jsonl') // training/123/samples/manifests/part-20261124-101500-3afdeab9.jsonl
 * await appendToManifest(ctx, 'training/123/samples/manifest.jsonl', [{ kind: 'manifest_ref', key: part }])
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type ManifestEntry, serializeEntry } from '../format/entries.js'
import { parseManifest } from '../format/entry-stream.js'
import { httpStatusOf, ManifestConflictError, ObjectChangedError, ObjectNotFoundError, S3RequestError } from '../format/errors.js'
import { emitEvent } from '../format/events.js'
import { isBlankLine } from '../format/jsonl.js'
import { checkOptions } from '../format/options.js'
import type { S3Context } from '../s3/context.js'
import type { WrittenObject } from '../s3/multipart-upload.js'
import { getObjectBody } from '../s3/object-source.js'
import { putBytes } from '../s3/object-writer.js'
import { timesSent } from '../s3/requests.js'
import { type WriteOptions, withWriteOptions } from '../s3/write-options.js'

/** Content-Type of manifests. */
export const MANIFEST_CONTENT_TYPE = 'application/x-ndjson'

/** Options for {@link appendToManifest}; the write options (`WriteOptions`) apply to the root written (its SSE-C key to its read too). */
export interface AppendOptions extends WriteOptions {
  /**
   * Attempts before giving up with `ManifestConflictError` (lost races), or with the server's error
   * when it kept asking to slow down (each counted apart). Default 20.
   */
  maxAttempts?: number
  /** First pause between attempts, in ms (doubled each time, up to `maxDelayMs`, fully jittered). Default 25. */
  baseDelayMs?: number
  /** Longest pause between attempts, in ms. Default 2000. */
  maxDelayMs?: number
}

/** What an append did. */
export interface AppendResult {
  /**
   * The root's new ETag. When the append was recognized after its answer was lost, the ETag of the
   * root read then, which may already hold later writers' appends.
   */
  etag: string | undefined
  /** Attempts it took (1 when nobody else was writing). */
  attempts: number
}

/**
 * Appends entries to the manifest at `root` (creating it when absent) with a conditional write,
 * retrying on conflicts; see the module comment. The root's existing lines are kept byte for byte
 * and checked first: an unreadable root throws `InvalidManifestError` and is left alone.
 */
export async function appendToManifest(
  ctx: S3Context,
  root: string,
  entries: ManifestEntry[],
  options: AppendOptions = {},
): Promise<AppendResult> {
  checkOptions('appendToManifest', options)
  ctx = withWriteOptions(ctx, options)
  const maxAttempts = options.maxAttempts ?? 20
  const lines = entries.map((entry) => `${serializeEntry(entry)}\n`).join('')
  let lastConflict: unknown
  // The root as written by an attempt that may have been carried out although its answer was lost
  // (a connection broken after the server wrote, the SDK's repeat then refused with 412). If the
  // root, read again, begins with it, the append is in: appending again would list it twice.
  let unsure: string | undefined
  let conflicts = 0
  let throttles = 0
  for (let attempt = 1; conflicts < maxAttempts; attempt++) {
    let body: string | undefined
    try {
      // A read of the root that broke and found it replaced on resuming (ObjectChangedError) lost
      // the race as surely as a refused write: another writer got there first.
      const current = await readRoot(ctx, root)
      if (unsure !== undefined && current?.text.startsWith(unsure)) return { etag: current.etag, attempts: attempt - 1 }
      unsure = undefined
      body = current === undefined ? lines : joinManifest(current.text, lines)
      const condition = current === undefined ? { ifNoneMatch: '*' } : current.etag ? { ifMatch: current.etag } : {}
      const written = await putManifestBytes(ctx, root, Buffer.from(body, 'utf8'), condition)
      return { etag: written.etag, attempts: attempt }
    } catch (error) {
      const mayHaveLanded = body !== undefined && sentMoreThanOnce(error)
      const lostRace = isConflict(error) || error instanceof ObjectChangedError
      const slowDown = isSlowDown(error) && ++throttles < maxAttempts
      if (!(lostRace || slowDown)) {
        // A failure other than a lost race: look once whether this write, or an earlier one whose
        // answer was lost, got through anyway.
        const candidate = mayHaveLanded ? body : unsure
        const landed = candidate !== undefined ? await landedRead(ctx, root, candidate) : undefined
        if (landed) return { etag: landed.etag, attempts: attempt }
        throw error
      }
      if (mayHaveLanded) unsure = body
      if (lostRace) {
        conflicts++
        lastConflict = error
      }
      const status = error instanceof S3RequestError ? error.statusCode : httpStatusOf(error)
      emitEvent(ctx, { type: 'write-retried', key: root, attempt, reason: lostRace ? 'lost-race' : 'slow-down', status })
      const ceiling = Math.min(options.maxDelayMs ?? 2000, (options.baseDelayMs ?? 25) * 2 ** (attempt - 1))
      await sleep(Math.random() * ceiling, undefined, { signal: ctx.signal })
    }
  }
  throw new ManifestConflictError(root, maxAttempts, lastConflict)
}

/** Existing manifest text plus new lines: a newline in between if needed; whitespace-only text is replaced. */
function joinManifest(text: string, lines: string): string {
  if (isBlankLine(text)) return lines
  return text.endsWith('\n') ? text + lines : `${text}\n${lines}`
}

async function readRoot(ctx: S3Context, root: string): Promise<{ text: string; etag: string | undefined } | undefined> {
  let bytes: Uint8Array
  let etag: string | undefined
  try {
    const body = await getObjectBody(ctx, root)
    etag = body.etag
    bytes = await body.bytes()
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined
    throw error
  }
  // Refuse to build on a root that is not a valid manifest (Python would silently drop it).
  for await (const _ of parseManifest([bytes], { key: root })) {
    // parsing validates every line
  }
  return { text: Buffer.from(bytes).toString('utf8'), etag }
}

async function putManifestBytes(
  ctx: S3Context,
  key: string,
  body: Buffer,
  condition: { ifMatch?: string; ifNoneMatch?: string },
): Promise<WrittenObject> {
  try {
    return await putBytes(ctx, key, body, { contentType: MANIFEST_CONTENT_TYPE, ...condition })
  } catch (error) {
    // A server that does not implement conditional writes: behave like Python (last writer wins).
    if (error instanceof S3RequestError && error.statusCode === 501 && (condition.ifMatch || condition.ifNoneMatch)) {
      return putBytes(ctx, key, body, { contentType: MANIFEST_CONTENT_TYPE })
    }
    throw error
  }
}

/**
 * Whether a failed write of the root may still have been carried out: the SDK sent it more than
 * once (so an earlier send may have landed, its answer lost), or it got no answer at all.
 */
function sentMoreThanOnce(error: unknown): boolean {
  if (!(error instanceof S3RequestError)) return false
  return timesSent(error.cause) > 1 || error.statusCode === undefined
}

/** The root, if it begins with `body` (a few reads are tried); else undefined. */
async function landedRead(ctx: S3Context, root: string, body: string): Promise<{ etag: string | undefined } | undefined> {
  for (let read = 0; read < 3; read++) {
    try {
      const now = await readRoot(ctx, root)
      return now?.text.startsWith(body) ? now : undefined
    } catch {
      ctx.signal?.throwIfAborted()
      // try again: the root may have changed under a broken read
    }
  }
  return undefined
}

/**
 * True for the answers of a conditional write that lost a race: 412 Precondition Failed, 409
 * Conflict (`ConditionalRequestConflict`), and the 404 AWS S3 answers to `If-Match` when the object
 * is gone (Ceph RGW answers that 412); not a missing bucket or upload.
 */
export function isConflict(error: unknown): boolean {
  if (!(error instanceof S3RequestError)) return false
  if (error.statusCode === 412 || error.statusCode === 409) return true
  const code = (error.cause as { name?: string } | undefined)?.name
  return error.statusCode === 404 && code !== 'NoSuchBucket' && code !== 'NoSuchUpload'
}

/** True for a server asking to slow down (429, 503 `SlowDown`), once the SDK's own retries are spent. */
export function isSlowDown(error: unknown): boolean {
  return error instanceof S3RequestError && (error.statusCode === 429 || error.statusCode === 503)
}
