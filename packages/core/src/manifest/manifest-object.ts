/**
 * `ManifestObjectWriter`: entries into one manifest object, replacing what was there (Python's
 * `mode="overwrite"`). The JSONL is streamed into S3 as it is produced (a multipart upload when
 * large, so a 1,000,000-entry manifest works on servers that cap single PUTs) and appears under the
 * key all at once when complete; on failure the old object is untouched. No entries give `"\n"`, as
 * Python writes. The pull-based form, a sink for an iterable of entries, is `writeManifestObject`.
 *
 * @example
 * ```ts
 * import { ManifestObjectWriter } from '@s3exchange/core/internals'
 *
 * const writer = new ManifestObjectWriter(ctx, 'training/123/samples/manifest.jsonl')
 * await writer.add({ kind: 'file', key: 'training/123/samples/file1.wav', id: '001' })
 * await writer.finish() // { key, etag, size, entries: 1 }
 * ```
 */
import { type ManifestEntry, serializeEntry, validateEntry } from '../format/entries.js'
import { checkOptions } from '../format/options.js'
import type { ProgressCounter } from '../format/progress.js'
import type { Writer } from '../format/writer.js'
import type { S3Context } from '../s3/context.js'
import type { UploadOptions, WrittenObject } from '../s3/multipart-upload.js'
import { ObjectWriter } from '../s3/object-writer.js'
import type { WriteOptions } from '../s3/write-options.js'
import { MANIFEST_CONTENT_TYPE } from './commit.js'

/** Options for writing a manifest object: how it is uploaded, and the write options (`WriteOptions`). */
export interface WriteManifestObjectOptions
  extends Pick<UploadOptions, 'partSize' | 'queueSize' | 'ifMatch' | 'ifNoneMatch'>,
    WriteOptions {}

/** A manifest object that was written. */
export type WrittenManifest = WrittenObject & { entries: number }

const FLUSH_TEXT = 64 * 1024

/** Streams entries into one manifest object, published by `finish()`. */
export class ManifestObjectWriter implements Writer<ManifestEntry, WrittenManifest> {
  readonly #writer: ObjectWriter
  #text = ''
  #entries = 0
  #bytes = 0

  /** `progress`: the call's, when the manifest is part of a larger call (its bytes count as its parts go up). */
  constructor(ctx: S3Context, key: string, options: WriteManifestObjectOptions = {}, progress?: ProgressCounter) {
    checkOptions('ManifestObjectWriter', options)
    this.#writer = new ObjectWriter(ctx, key, { ...options, contentType: MANIFEST_CONTENT_TYPE }, progress, false)
  }

  get key(): string {
    return this.#writer.key
  }

  /** Entries added so far. */
  get entries(): number {
    return this.#entries
  }

  /** Bytes of JSONL added so far. */
  get bytes(): number {
    return this.#bytes
  }

  /**
   * Adds one entry (a line). An entry that readers would refuse (no `kind`, an unknown one, no
   * `key` / `archive_key`) throws `InvalidManifestError` naming this manifest and the line it
   * would have been.
   */
  async add(entry: ManifestEntry, line: string = lineOf(entry)): Promise<void> {
    validateEntry(entry, { key: this.key, lineNumber: this.#entries + 1 })
    this.#text += line
    this.#entries++
    // serializeEntry's output is ASCII unless a lone surrogate was written raw: length is the byte count.
    this.#bytes += line.length
    if (this.#text.length >= FLUSH_TEXT) await this.#flushText()
  }

  /** Writes what is left and publishes the object. */
  async finish(): Promise<WrittenManifest> {
    if (this.#entries === 0) this.#text = '\n'
    await this.#flushText()
    return { ...(await this.#writer.finish()), entries: this.#entries }
  }

  /** Abandons the object; nothing is published. */
  async abort(): Promise<void> {
    this.#text = ''
    await this.#writer.abort()
  }

  async #flushText(): Promise<void> {
    if (this.#text === '') return
    const text = this.#text
    this.#text = ''
    await this.#writer.add(Buffer.from(text, 'utf8'))
  }
}

/** The manifest line of an entry, newline included (its length is its byte count: the line is ASCII). */
export function lineOf(entry: ManifestEntry): string {
  return `${serializeEntry(entry)}\n`
}
