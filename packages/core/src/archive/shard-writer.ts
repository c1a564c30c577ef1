/**
 * `ShardWriter`: writes one shard archive (tar, or tar.gz) straight into S3 as items arrive, with
 * the internal manifest first and each member's `offset` recorded in it. Memory stays at a few
 * parts whatever the archive size, and nothing touches the disk.
 *
 * How the manifest gets first although it is known only at the end: the members stream out as
 * they come, and the manifest is handed over at the end as the archive's head, which
 * `HeadLastWriter` sends as part 1 of the multipart upload, last (a shard smaller than a part is
 * one PUT). With gzip, the manifest's deflate data is placed in front of the members' in one
 * single gzip member (see `gzip-stitch.ts`), so every gzip reader, streaming ones included, reads
 * it as usual.
 *
 * @example
 * ```ts
 * import { ShardWriter } from '@s3exchange/core'
 *
 * const writer = new ShardWriter(ctx, 'ds/shards/shard-00000.tar.gz', { compression: 'gzip' })
 * await writer.add({ source: Buffer.from('hello'), member_path: 'a.txt', id: 'a' })
 * await writer.add({ source: '/data/b.wav', member_path: 'b.wav', meta: { sr: 16000 } })
 * const entry = await writer.finish() // { kind: 'shard', archive_key, …, count: 2, size_bytes, meta: { etag } }
 * ```
 */
import { createHash } from 'node:crypto'
import { DEFAULT_INTERNAL_MANIFEST_PATH, type FileEntry, type ShardEntry, serializeEntry } from '../format/entries.js'
import { ShardWriteError } from '../format/errors.js'
import { virtualKey } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import type { Writer } from '../format/writer.js'
import type { S3Context } from '../s3/context.js'
import { hashing } from '../s3/data-source.js'
import type { UploadOptions } from '../s3/multipart-upload.js'
import type { ArchiveIndexOptions } from './archive-index.js'
import {
  BodyDeflater,
  deflateHead,
  deflatePadding,
  GZIP_HEADER_BYTES,
  gzipHead,
  gzipHeader,
  gzipTrailer,
  type Segment,
  SegmentDeflater,
} from './gzip-stitch.js'
import { HeadLastWriter } from './head-last-writer.js'
import { asShardWriteError, isPrepared, type PreparedShardItem, prepareShardItem, type ShardItem } from './shard-items.js'
import { paddedSize, TAR_END, tarHeader, tarHeaderSize, tarPadding } from './tar-writer.js'

/** Options for {@link ShardWriter}. */
export interface ShardWriterOptions
  extends Pick<UploadOptions, 'partSize' | 'queueSize'>,
    Pick<ArchiveIndexOptions, 'internalManifestPath'> {
  /** `'gzip'` for a .tar.gz, `null` for a plain tar. Default `'gzip'`, as Python's `put_shard_archive`. */
  compression?: 'gzip' | null
  /** gzip level, 1 (fast) to 9 (small). Default 6. */
  gzipLevel?: number
  /**
   * For gzip shards: compress members in independent segments (a full flush between them: a
   * large member alone, small ones grouped up to 64 KiB) and record where each member's segment
   * is (`gz_offset`, `gz_size`), so that one member can be read with one ranged GET. The archive
   * stays one standard gzip stream. Costs a little compression. Default true.
   */
  seekable?: boolean
  /** Largest stream without `size_bytes` read into memory to learn its size. Default 64 MiB. */
  maxUnsizedItemBytes?: number
}

/** Largest member copied into one write (smaller members are written header, data and padding at once). */
const SMALL_MEMBER = 256 * 1024
/** Size a segment of grouped small members reaches before it is deflated (seekable gzip). */
const SEGMENT_BYTES = 64 * 1024

/** Writes one shard archive; see the module comment. */
export class ShardWriter implements Writer<ShardItem | PreparedShardItem, ShardEntry> {
  readonly archiveKey: string
  readonly compression: 'gzip' | null
  readonly internalManifestPath: string
  readonly #options: ShardWriterOptions
  readonly #output: HeadLastWriter
  readonly #entries: FileEntry[] = []
  readonly #offsets: number[] = []
  readonly #paths = new Set<string>()
  #regionBytes = 0
  #dataBytes = 0
  #gzip: BodyDeflater | undefined
  #segments: SegmentDeflater | undefined
  /** For each member (by index), the compressed segment that holds it. */
  readonly #gzRanges: Segment[] = []
  /** Small members waiting to be deflated together as one segment. */
  #group: { parts: Uint8Array[]; bytes: number; members: number[] } = { parts: [], bytes: 0, members: [] }
  #state: 'open' | 'finished' | 'failed' = 'open'

  constructor(ctx: S3Context, archiveKey: string, options: ShardWriterOptions = {}) {
    checkOptions('ShardWriter', options)
    checkArchiveKey(archiveKey)
    if (options.compression !== undefined && options.compression !== 'gzip' && options.compression !== null) {
      throw new ShardWriteError(`unsupported compression: ${String(options.compression)} (gzip or null)`, { archiveKey })
    }
    this.archiveKey = archiveKey
    this.#options = options
    this.compression = options.compression === undefined ? 'gzip' : options.compression
    this.internalManifestPath = options.internalManifestPath ?? DEFAULT_INTERNAL_MANIFEST_PATH
    this.#output = new HeadLastWriter(ctx, archiveKey, options)
    const write = (chunk: Buffer) => this.#output.add(chunk)
    if (this.compression === 'gzip' && (options.seekable ?? true)) this.#segments = new SegmentDeflater(write, options.gzipLevel ?? 6)
    else if (this.compression === 'gzip') this.#gzip = new BodyDeflater(write, options.gzipLevel ?? 6)
  }

  /** Members added so far. */
  get count(): number {
    return this.#entries.length
  }

  /** Bytes of member data added so far (uncompressed, headers not counted). */
  get dataBytes(): number {
    return this.#dataBytes
  }

  /** The internal manifest entries so far (offsets are filled in by `finish()`). */
  get entries(): readonly FileEntry[] {
    return this.#entries
  }

  /**
   * Streams one member into the archive and returns its internal manifest entry. Resolves when
   * its data has been written (uploads may still be under way). An invalid item (bad path, size
   * that does not match) is refused before anything is written; a failure while writing aborts
   * the whole shard.
   */
  async add(item: ShardItem | PreparedShardItem): Promise<FileEntry> {
    this.#checkOpen()
    const prepared = 'source' in item && isPrepared(item) ? item : await prepareShardItem(item as ShardItem, this.archiveKey, this.#options)
    const { member_path: path } = prepared.item
    if (path === this.internalManifestPath) {
      throw new ShardWriteError('the member path is the internal manifest path', { archiveKey: this.archiveKey, memberPath: path })
    }
    if (this.#paths.has(path)) {
      throw new ShardWriteError('the member path is already in this shard', { archiveKey: this.archiveKey, memberPath: path })
    }
    try {
      this.#paths.add(path)
      const size = prepared.source.size
      const header = tarHeader({ name: path, size })
      this.#offsets.push(this.#regionBytes + header.byteLength)
      const padding = tarPadding(size)
      const hash = createHash('sha256')
      const data = prepared.source.bytes
      if (data) hash.update(data)
      if (this.#segments) {
        // Seekable gzip: members go into independently inflatable segments. Small ones are grouped
        // into segments of about SEGMENT_BYTES, so that they still compress against each other; a
        // large one is a segment of its own.
        const index = this.#entries.length
        if (prepared.source.bytes && size <= SMALL_MEMBER) {
          this.#group.parts.push(header, prepared.source.bytes, padding)
          this.#group.bytes += header.byteLength + size + padding.byteLength
          this.#group.members.push(index)
          if (this.#group.bytes >= SEGMENT_BYTES) await this.#flushGroup()
        } else {
          await this.#flushGroup()
          this.#gzRanges[index] = await this.#segments.streamSegment(
            concatStreams([header], data ? [data] : hashing(hash, prepared.source.open()), [padding]),
          )
        }
        this.#regionBytes += header.byteLength + size + padding.byteLength
      } else if (prepared.source.bytes && size <= SMALL_MEMBER) {
        await this.#write(Buffer.concat([header, prepared.source.bytes, padding]))
      } else {
        await this.#write(header)
        for await (const chunk of data ? [data] : hashing(hash, prepared.source.open())) await this.#write(chunk)
        await this.#write(padding)
      }
      this.#dataBytes += size
      const entry: FileEntry = {
        kind: 'file',
        key: virtualKey(this.archiveKey, path),
        member_path: path,
        id: prepared.item.id ?? null,
        meta: prepared.item.meta ?? null,
        size_bytes: size,
        sha256: hash.digest('hex'),
      }
      this.#entries.push(entry)
      return entry
    } catch (error) {
      await this.abort()
      throw asShardWriteError(error, this.archiveKey, path)
    }
  }

  /** Writes the internal manifest, completes the upload and returns the shard's manifest entry. */
  async finish(): Promise<ShardEntry> {
    this.#checkOpen()
    try {
      let prefix: Uint8Array
      const level = this.#options.gzipLevel ?? 6
      if (this.#segments) {
        await this.#flushGroup()
        await this.#segments.segment([TAR_END], true)
        const body = this.#segments.result()
        // gz_offset counts from the start of the object, whose first bytes are the compressed
        // manifest itself. Choose where the members start (a little past the manifest's
        // compressed size), write the offsets from there, and pad the compressed manifest with
        // empty deflate blocks so that it ends exactly there.
        let base = GZIP_HEADER_BYTES + deflateHead(this.#manifestRegion(0), level).byteLength + 64
        let head = this.#manifestRegion(base)
        let deflated = deflateHead(head, level)
        for (let round = 0; base - GZIP_HEADER_BYTES - deflated.byteLength < 9; round++) {
          if (round > 8) throw new ShardWriteError('the internal manifest size did not settle', { archiveKey: this.archiveKey })
          base = GZIP_HEADER_BYTES + deflated.byteLength + 64 * 2 ** (round + 1)
          head = this.#manifestRegion(base)
          deflated = deflateHead(head, level)
        }
        prefix = Buffer.concat([gzipHeader(), deflated, deflatePadding(base - GZIP_HEADER_BYTES - deflated.byteLength)])
        await this.#output.add(gzipTrailer(head, body.crc, body.length))
      } else {
        await this.#write(TAR_END)
        const head = this.#manifestRegion(undefined)
        prefix = head
        if (this.#gzip) {
          // One gzip member: the manifest's deflate data goes in front of the members' (see gzip-stitch.ts).
          const body = await this.#gzip.end()
          await this.#output.add(gzipTrailer(head, body.crc, body.length))
          prefix = gzipHead(head, level)
        }
      }
      const written = await this.#output.finish(prefix)
      this.#state = 'finished'
      return {
        kind: 'shard',
        archive_key: this.archiveKey,
        format: 'tar',
        compression: this.compression,
        internal_manifest_path: this.internalManifestPath,
        count: this.#entries.length,
        size_bytes: written.size,
        meta: { etag: written.etag ?? null },
      }
    } catch (error) {
      await this.abort()
      throw error
    }
  }

  /** Abandons the shard: nothing appears under its key, the multipart upload is aborted. */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return
    this.#state = 'failed'
    this.#gzip?.destroy()
    this.#segments?.destroy()
    await this.#output.abort()
  }

  /** Deflates the grouped small members as one segment. */
  async #flushGroup(): Promise<void> {
    const group = this.#group
    if (group.members.length === 0 || !this.#segments) return
    this.#group = { parts: [], bytes: 0, members: [] }
    const segment = await this.#segments.segment(group.parts)
    for (const index of group.members) this.#gzRanges[index] = segment
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new ShardWriteError(`the shard writer is ${this.#state}`, { archiveKey: this.archiveKey })
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) return
    this.#regionBytes += bytes.byteLength
    if (this.#gzip) await this.#gzip.write(bytes)
    else await this.#output.add(bytes)
  }

  /**
   * The tar header and body of the internal manifest, with every member's offset: offsets count
   * from the start of the archive, whose first bytes are this very region, so its length is found
   * by iterating until it no longer changes (it is a multiple of 512; a few rounds at most). With
   * `gzBase` (seekable gzip), each entry also gets `gz_offset` (= gzBase + the member's segment
   * offset in the compressed body) and `gz_size`.
   */
  #manifestRegion(gzBase: number | undefined): Buffer {
    let regionLength = 0
    for (let round = 0; round < 16; round++) {
      const text = this.#entries
        .map((entry, i) => {
          const located: FileEntry = { ...entry, offset: regionLength + (this.#offsets[i] as number) }
          const segment = this.#gzRanges[i]
          if (gzBase !== undefined && segment) {
            located.gz_offset = gzBase + segment.offset
            located.gz_size = segment.size
          }
          return `${serializeEntry(located)}\n`
        })
        .join('')
      const body = Buffer.from(this.#entries.length === 0 ? '\n' : text, 'utf8')
      const length = tarHeaderSize({ name: this.internalManifestPath, size: body.byteLength }) + paddedSize(body.byteLength)
      if (length === regionLength) {
        return Buffer.concat([tarHeader({ name: this.internalManifestPath, size: body.byteLength }), body, tarPadding(body.byteLength)])
      }
      regionLength = length
    }
    throw new ShardWriteError('the internal manifest size did not settle', { archiveKey: this.archiveKey })
  }
}

/**
 * Refuses an archive key its members could not be read by: empty, or with a `#` (a virtual key
 * `archive#member` is split at its first `#`). `ShardWriteError` naming it.
 */
export function checkArchiveKey(archiveKey: string): void {
  if (typeof archiveKey !== 'string' || archiveKey === '') {
    throw new ShardWriteError('the archive key is empty', { archiveKey: String(archiveKey) })
  }
  if (archiveKey.includes('#')) {
    throw new ShardWriteError(
      "the archive key contains '#': its members could not be read by virtual key (archive#member is split at the first '#')",
      { archiveKey },
    )
  }
}

async function* concatStreams(...parts: (Iterable<Uint8Array> | AsyncIterable<Uint8Array>)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield* part
}
