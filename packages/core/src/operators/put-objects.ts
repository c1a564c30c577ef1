/**
 * Uploading loose objects: `putObject` (one object → its `FileEntry`, as Python returns it) and the
 * `putObjects` stage (objects → entries, `concurrency` uploads at a time, in input order). Bytes up
 * to a part are one PUT; files, streams and anything larger stream through a multipart upload. The
 * size and ETag come from the upload itself: no HEAD afterwards (unless the server sent no ETag).
 * With a condition (`ifMatch`, `ifNoneMatch`), bytes are one conditional PUT up to the largest the
 * server takes, and a file or stream larger than a part needs a server known to honour conditions on
 * multipart completions (else `ConditionalWriteUnsupportedError`; see `UploadOptions.ifMatch`).
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { putObject, putObjects, writeManifestParts } from '@s3exchange/core'
 *
 * const entry = await putObject(ctx, 'training/123/samples/file.wav', wavBytes, { id: 'file-001', meta: { sr: 16000 } })
 *
 * await pipe(
 *   clips.map((clip) => ({ key: `training/123/samples/${clip.id}.wav`, data: clip.bytes, meta: { sr: 16000 } })),
 *   putObjects(ctx, { concurrency: 16 }),
 *   writeManifestParts(ctx, 'training/123/samples/manifest.jsonl'),
 * )
 * ```
 */
import { createHash } from 'node:crypto'
import { checkJsonValue, type FileEntry, type Meta } from '../format/entries.js'
import { iteratorOf } from '../format/iterables.js'
import { inferId as defaultInferId } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { type OnProgress, type ProgressCounter, type ProgressOptions, progressCounter } from '../format/progress.js'
import { writeAll } from '../format/writer.js'
import { isConditional } from '../s3/conditional-write.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { type DataSource, hashing, prepareSource } from '../s3/data-source.js'
import type { UploadOptions, WrittenObject } from '../s3/multipart-upload.js'
import { ObjectWriter, putBytes } from '../s3/object-writer.js'
import { pickWriteOptions, type WriteOptions, withWriteOptions } from '../s3/write-options.js'

/** Options for {@link putObject}: the entry's fields, how it is uploaded, and the write options (`WriteOptions`). */
export interface PutObjectOptions
  extends Pick<UploadOptions, 'partSize' | 'queueSize' | 'ifMatch' | 'ifNoneMatch' | 'onProgress'>,
    WriteOptions {
  /** The entry's id. Default: inferred from the key (`inferId`). */
  id?: string | null
  /** The entry's metadata. */
  meta?: Meta | null
  /** Content-Type of the object, also recorded in the entry. */
  contentType?: string | null
  /** How to infer an id from the key. Default: the basename without its last extension. */
  inferId?: (key: string) => string
}

/**
 * Uploads `data` (bytes, a file path, a Readable or an async iterable of bytes) to `key` and
 * returns its entry: `{ kind, key, id, meta, content_type, size_bytes, etag }`, `null` for what is
 * not given, as Python returns it, plus `sha256` (hex) of the bytes uploaded, an extension that
 * readers check with `verify: true` (Python ignores it).
 */
export async function putObject(ctx: S3Context, key: string, data: DataSource, options: PutObjectOptions = {}): Promise<FileEntry> {
  checkContext('putObject', ctx)
  checkOptions('putObject', options)
  checkJsonValue(key, 'meta', options.meta)
  ctx = withWriteOptions(ctx, options) // bad write options fail here, before the data is opened
  const source = await prepareSource(data, { key })
  const hash = createHash('sha256')
  const upload = { ...options, contentType: options.contentType ?? undefined }
  let written: WrittenObject
  if (source.bytes && isConditional(options)) {
    // Bytes in memory with a condition: one conditional PutObject up to the server's limit.
    hash.update(source.bytes)
    written = await putBytes(ctx, key, source.bytes, upload)
  } else {
    // Progress: the object's parts as they are uploaded, out of its size when known (bytes, a file).
    const progress = progressCounter(options, { totalObjects: 1, totalBytes: source.size })
    const writer = new ObjectWriter(ctx, key, upload, progress, true)
    written = await writeAll(writer, hashing(hash, source.bytes ? [source.bytes] : source.open()))
  }
  return {
    kind: 'file',
    key,
    id: options.id ?? (options.inferId ?? defaultInferId)(key),
    meta: options.meta ?? null,
    content_type: options.contentType ?? null,
    size_bytes: written.size,
    etag: written.etag ?? null,
    sha256: hash.digest('hex'),
  }
}

/** One object for {@link putObjects}: its key, data and entry fields, and write options of its own (over the stage's). */
export interface PutObjectItem extends Pick<PutObjectOptions, 'id' | 'meta' | 'contentType'>, WriteOptions {
  key: string
  data: DataSource
}

/**
 * Options for {@link putObjects}: the write options apply to every object (an item's own override
 * them). `onProgress`: the bytes of every object's parts as they are uploaded, and each object once
 * written (in the order they finish); no totals (the items come as they come).
 */
export interface PutObjectsOptions extends Pick<PutObjectOptions, 'partSize' | 'queueSize' | 'inferId'>, WriteOptions, ProgressOptions {
  /** Uploads at once. Default 16. */
  concurrency?: number
}

/** Uploads objects, `concurrency` at a time, and yields their entries in input order. */
export function putObjects(ctx: S3Context, options: PutObjectsOptions = {}) {
  checkContext('putObjects', ctx)
  checkOptions('putObjects', options)
  const concurrency = options.concurrency ?? 16
  const stageCtx = withWriteOptions(ctx, options)
  const upload = { partSize: options.partSize, queueSize: options.queueSize, inferId: options.inferId }
  const progress = progressCounter(options)
  return async function* putObjectsStage(
    items: AsyncIterable<PutObjectItem> | Iterable<PutObjectItem>,
  ): AsyncGenerator<FileEntry, void, undefined> {
    const window: Promise<FileEntry>[] = []
    const iterator = iteratorOf(items)
    let done = false
    try {
      for (;;) {
        while (!done && window.length < concurrency) {
          const next = await iterator.next()
          if (next.done) {
            done = true
            break
          }
          const item = next.value
          const uploading = putObject(stageCtx, item.key, item.data, {
            ...upload,
            ...pickWriteOptions(item),
            id: item.id,
            meta: item.meta,
            contentType: item.contentType,
            onProgress: progress && forwardTo(progress),
          })
          uploading.catch(() => {})
          window.push(uploading)
        }
        const head = window.shift()
        if (head === undefined) return
        yield await head
      }
    } finally {
      // Uploads still running finish on their own; their objects are complete but unreported.
      await Promise.allSettled(window)
      await iterator.return?.()
    }
  }
}

/** One object's progress added to the stage's: its parts' bytes as they go up, the object once written. */
function forwardTo(progress: ProgressCounter): OnProgress {
  let reported = 0
  return ({ loadedBytes, loadedObjects, key }) => {
    const bytes = loadedBytes - reported
    reported = loadedBytes
    if (loadedObjects > 0) progress.addObjects(loadedObjects, bytes, key)
    else progress.addBytes(bytes, key)
  }
}
