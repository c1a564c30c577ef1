/**
 * `ManifestPartsWriter`: entries in, part manifests out, then one conditional commit that appends a
 * `manifest_ref` for every new part to the root: the root gains every part or none. Each part is
 * streamed into S3 as entries arrive (multipart when large), and rotated at `partMaxEntries` /
 * `partMaxBytes`. This is what `writeManifestParts`, `writeManifest(…, { mode: 'append_parts' })` and
 * `ManifestWriter` use.
 *
 * @example
 * ```ts
 * import { ManifestPartsWriter } from '@s3exchange/core'
 *
 * const writer = new ManifestPartsWriter(ctx, 'training/123/samples/manifest.jsonl')
 * for (const entry of entries) await writer.add(entry)
 * const { parts } = await writer.finish()
 * ```
 */
import type { ManifestEntry } from '../format/entries.js'
import { partKeyFor } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { type BatchSize, closesBefore, isFull, type RolloverLimits } from '../format/rollover.js'
import type { Writer } from '../format/writer.js'
import type { S3Context } from '../s3/context.js'
import type { UploadOptions } from '../s3/multipart-upload.js'
import { withWriteOptions } from '../s3/write-options.js'
import { type AppendOptions, appendToManifest } from './commit.js'
import { lineOf, ManifestObjectWriter } from './manifest-object.js'

/** Options for {@link ManifestPartsWriter}; the write options (`WriteOptions`, from `AppendOptions`) apply to the parts and the root. */
export interface ManifestPartsOptions extends AppendOptions, Pick<UploadOptions, 'partSize' | 'queueSize'> {
  /** Most entries per part. Default 50,000. */
  partMaxEntries?: number
  /** Most bytes per part. Default 50 MiB. */
  partMaxBytes?: number
}

/** What a commit published. */
export interface CommitResult {
  /** The root manifest. */
  root: string
  /** The parts now referenced by the root, in order. */
  parts: string[]
  /** Entries written to those parts. */
  entries: number
  /** The root's new ETag (undefined when there was nothing to commit). */
  rootEtag: string | undefined
}

/** Writes part manifests and commits them to a root; see the module comment. */
export class ManifestPartsWriter implements Writer<ManifestEntry, CommitResult> {
  readonly root: string
  readonly #ctx: S3Context
  readonly #options: ManifestPartsOptions
  readonly #limits: RolloverLimits
  readonly #parts: string[] = []
  #part: ManifestObjectWriter | undefined
  #entries = 0

  constructor(ctx: S3Context, root: string, options: ManifestPartsOptions = {}) {
    checkOptions('ManifestPartsWriter', options)
    this.#ctx = withWriteOptions(ctx, options)
    this.root = root
    this.#options = options
    this.#limits = { maxEntries: options.partMaxEntries ?? 50_000, maxBytes: options.partMaxBytes ?? 50 * 1024 * 1024 }
  }

  #sizeOf(part: ManifestObjectWriter): BatchSize {
    return { count: part.entries, bytes: part.bytes }
  }

  /** Parts uploaded and not yet committed. */
  get parts(): readonly string[] {
    return this.#parts
  }

  /** Entries and bytes in the part being written. */
  get pending(): { entries: number; bytes: number } {
    return { entries: this.#part?.entries ?? 0, bytes: this.#part?.bytes ?? 0 }
  }

  /** The key of the part being written, if one is open. */
  get openPart(): string | undefined {
    return this.#part?.key
  }

  /** Adds an entry to the current part, and closes the part when it reaches a limit. */
  async add(entry: ManifestEntry): Promise<void> {
    const line = lineOf(entry)
    // A part holds at most partMaxEntries entries and partMaxBytes bytes (a single longer line gets
    // a part of its own): the rollover rule, with a part uploaded as soon as it is full.
    if (this.#part && closesBefore(this.#limits, this.#sizeOf(this.#part), line.length)) await this.flushPart()
    this.#part ??= new ManifestObjectWriter(this.#ctx, partKeyFor(this.root), this.#options)
    const part = this.#part
    await part.add(entry, line)
    this.#entries++
    if (isFull(this.#limits, this.#sizeOf(part))) await this.flushPart()
  }

  /** Closes the current part (if it has entries) and returns its key. */
  async flushPart(): Promise<string | undefined> {
    const part = this.#part
    if (part === undefined || part.entries === 0) return undefined
    this.#part = undefined
    await part.finish()
    this.#parts.push(part.key)
    return part.key
  }

  /** Closes the current part and appends a ref for every new part to the root, in one conditional write (the commit). */
  async finish(): Promise<CommitResult> {
    await this.flushPart()
    const parts = [...this.#parts]
    if (parts.length === 0) return { root: this.root, parts, entries: 0, rootEtag: undefined }
    const { etag } = await appendToManifest(
      this.#ctx,
      this.root,
      parts.map((key) => ({ kind: 'manifest_ref', key })),
      this.#options,
    )
    this.#parts.length = 0
    return { root: this.root, parts, entries: this.#entries, rootEtag: etag }
  }

  /** Aborts the part being written. Parts already uploaded stay (see `parts`). */
  async abort(): Promise<void> {
    const part = this.#part
    this.#part = undefined
    await part?.abort()
  }
}
