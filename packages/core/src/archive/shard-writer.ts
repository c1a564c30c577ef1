/**
 * `ShardWriter`: writes one shard archive (tar, tar.gz or tar.zst) straight into S3 as items
 * arrive, with the internal manifest first and each member's `offset` recorded in it. Memory stays at a few
 * parts whatever the archive size, and nothing touches the disk.
 *
 * How the manifest gets first although it is known only at the end: the members stream out as
 * they come, and the manifest is handed over at the end as the archive's head, which
 * `HeadLastWriter` sends as part 1 of the multipart upload, last (a shard smaller than a part is
 * one PUT). With gzip, the manifest's deflate data is placed in front of the members' in one
 * single gzip member (see `gzip-stitch.ts`), so every gzip reader, streaming ones included, reads
 * it as usual. With zstd, the manifest is a zstd frame of its own, placed in front of the members'
 * frames (concatenated frames are one zstd stream), padded by a skippable frame so that the member
 * frames start where the manifest says.
 *
 * @example
 * ```ts
 * import { ShardWriter } from '@s3exchange/core'
 *
 * const writer = new ShardWriter(ctx, 'ds/shards/shard-00000.tar.gz') // gzip: the extension says so
 * await writer.add({ source: Buffer.from('hello'), member_path: 'a.txt', id: 'a' })
 * await writer.add({ source: '/data/b.wav', member_path: 'b.wav', meta: { sr: 16000 } })
 * const entry = await writer.finish() // { kind: 'shard', archive_key, …, count: 2, size_bytes, meta: { etag } }
 * ```
 *
 * (Over 300 lines on purpose: plain, gzip and zstd archives share one member loop and one offset
 * bookkeeping; split by compression, that bookkeeping would be spread over several files.)
 */
import { createHash } from 'node:crypto'
import { DEFAULT_INTERNAL_MANIFEST_PATH, type FileEntry, type ShardEntry, serializeEntry } from '../format/entries.js'
import { ShardWriteError } from '../format/errors.js'
import { type ArchiveCompression, archiveCompressionFor, virtualKey } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { type ProgressCounter, type ProgressOptions, progressCounter } from '../format/progress.js'
import type { Writer } from '../format/writer.js'
import type { S3Context } from '../s3/context.js'
import { hashing } from '../s3/data-source.js'
import type { UploadOptions } from '../s3/multipart-upload.js'
import type { WriteOptions } from '../s3/write-options.js'
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
import { StreamCompressor } from './stream-compressor.js'
import { paddedSize, TAR_END, tarHeader, tarHeaderSize, tarPadding } from './tar-writer.js'
import { compressFrame, createFrameCompressor, DEFAULT_ZSTD_LEVEL, FrameCompressor, type ZstdFunctions, zstdFor } from './zstd-codec.js'
import { paddingFrame, SKIPPABLE_HEADER_BYTES } from './zstd-frames.js'

/** Options for {@link ShardWriter}. */
export interface ShardWriterOptions
  extends Pick<UploadOptions, 'partSize' | 'queueSize'>,
    ProgressOptions,
    Pick<ArchiveIndexOptions, 'internalManifestPath'>,
    WriteOptions {
  /**
   * `'gzip'` for a .tar.gz, `'zstd'` for a .tar.zst, `null` for a plain tar. Default: what the
   * archive key's extension says (`.tar`, `.tar.gz` / `.tgz`, `.tar.zst` / `.tzst`); gzip for a key
   * without one, as Python's `put_shard_archive`. A value the extension contradicts is a
   * `ConfigurationError` naming the key and the option (see `archiveCompressionFor`). zstd needs
   * Node ≥ 22.15 (before, a `ShardWriteError` naming the archive) and readers of this library:
   * Python s3exchange cannot read it.
   */
  compression?: ArchiveCompression | undefined
  /** gzip level, 1 (fast) to 9 (small). Default 6. */
  gzipLevel?: number
  /** zstd level, 1 (fast) to 19 (small; 20 to 22 need a lot of memory to read). Default 3, zstd's own. */
  zstdLevel?: number
  /**
   * For compressed shards: compress members in independent pieces, a large member alone and
   * small ones grouped up to 64 KiB, and record where each member's piece is, so that one member
   * can be read with one ranged GET: gzip segments (a full flush between them: `gz_offset`,
   * `gz_size`), zstd frames (`zst_offset`, `zst_size`). The archive stays one standard gzip or
   * zstd stream. Costs a little compression. Default true.
   */
  seekable?: boolean
  /** Largest stream without `size_bytes` read into memory to learn its size. Default 64 MiB. */
  maxUnsizedItemBytes?: number
}

/** Largest member copied into one write (smaller members are written header, data and padding at once). */
const SMALL_MEMBER = 256 * 1024
/** Size a segment of grouped small members reaches before it is compressed (seekable gzip and zstd). */
const SEGMENT_BYTES = 64 * 1024

/** Writes independently readable segments (gzip) or frames (zstd), saying where each went. */
interface SegmentWriter {
  segment(parts: Uint8Array[], final?: boolean): Promise<Segment>
  streamSegment(parts: AsyncIterable<Uint8Array>, size: number): Promise<Segment>
  destroy(): void
}

/** The internal manifest fields that locate a member's compressed piece. */
type LocationFields = readonly ['gz_offset', 'gz_size'] | readonly ['zst_offset', 'zst_size']

/** Writes one shard archive; see the module comment. */
export class ShardWriter implements Writer<ShardItem | PreparedShardItem, ShardEntry> {
  readonly archiveKey: string
  readonly compression: ArchiveCompression
  readonly internalManifestPath: string
  readonly #options: ShardWriterOptions
  readonly #output: HeadLastWriter
  readonly #entries: FileEntry[] = []
  readonly #offsets: number[] = []
  readonly #paths = new Set<string>()
  #regionBytes = 0
  #dataBytes = 0
  #gzip: BodyDeflater | undefined
  #zstd: ZstdFunctions | undefined
  #zstdStream: StreamCompressor | undefined
  #segments: SegmentWriter | undefined
  /** For each member (by index), the compressed segment (zstd frame) that holds it. */
  readonly #segmentOf: Segment[] = []
  /** Small members waiting to be deflated together as one segment. */
  #group: { parts: Uint8Array[]; bytes: number; members: number[] } = { parts: [], bytes: 0, members: [] }
  #state: 'open' | 'finished' | 'failed' = 'open'
  readonly #progress: ProgressCounter | undefined

  /**
   * Throws before anything is written: `ConfigurationError` for a compression the key contradicts
   * or bad write options, `ShardWriteError` for zstd on a Node without it. Progress
   * (`options.onProgress`, or the `progress` of a larger call that writes many shards): a member
   * added is an object done, and the archive's bytes count as its parts are uploaded.
   */
  constructor(ctx: S3Context, archiveKey: string, options: ShardWriterOptions = {}, progress?: ProgressCounter) {
    checkOptions('ShardWriter', options)
    checkArchiveKey(archiveKey)
    this.archiveKey = archiveKey
    this.#options = options
    this.compression = archiveCompressionFor(archiveKey, options.compression)
    this.internalManifestPath = options.internalManifestPath ?? DEFAULT_INTERNAL_MANIFEST_PATH
    // Before anything is uploaded: a Node without zstd refuses here.
    this.#zstd = this.compression === 'zstd' ? zstdFor('write', archiveKey) : undefined
    this.#progress = progress ?? progressCounter(options)
    this.#output = new HeadLastWriter(ctx, archiveKey, options, this.#progress, false) // the write options: see PartWriter
    const write = (chunk: Buffer) => this.#output.add(chunk)
    const seekable = options.seekable ?? true
    const zstdLevel = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL
    if (this.compression === 'gzip' && seekable) this.#segments = new SegmentDeflater(write, options.gzipLevel ?? 6)
    else if (this.compression === 'gzip') this.#gzip = new BodyDeflater(write, options.gzipLevel ?? 6)
    else if (this.#zstd && seekable) this.#segments = new FrameCompressor(this.#zstd, write, zstdLevel)
    else if (this.#zstd) this.#zstdStream = new StreamCompressor(write, createFrameCompressor(this.#zstd, zstdLevel))
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
        // Seekable gzip or zstd: members go into independently readable segments (zstd frames).
        // Small ones are grouped into segments of about SEGMENT_BYTES, so that they still compress
        // against each other; a large one is a segment of its own.
        const index = this.#entries.length
        if (prepared.source.bytes && size <= SMALL_MEMBER) {
          this.#group.parts.push(header, prepared.source.bytes, padding)
          this.#group.bytes += header.byteLength + size + padding.byteLength
          this.#group.members.push(index)
          if (this.#group.bytes >= SEGMENT_BYTES) await this.#flushGroup()
        } else {
          await this.#flushGroup()
          this.#segmentOf[index] = await this.#segments.streamSegment(
            concatStreams([header], data ? [data] : hashing(hash, prepared.source.open()), [padding]),
            header.byteLength + size + padding.byteLength,
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
      // A callback that throws fails the shard (aborted) with the callback's error.
      this.#progress?.addObjects(1, 0, entry.key)
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
      if (this.#segments) {
        await this.#flushGroup()
        await this.#segments.segment([TAR_END], true)
        prefix = this.#zstd ? this.#seekableZstdHead(this.#zstd) : await this.#seekableGzipHead()
      } else {
        await this.#write(TAR_END)
        const head = this.#manifestRegion(undefined)
        prefix = head
        if (this.#gzip) {
          // One gzip member: the manifest's deflate data goes in front of the members' (see gzip-stitch.ts).
          const body = await this.#gzip.end()
          await this.#output.add(gzipTrailer(head, body.crc, body.length))
          prefix = gzipHead(head, this.#options.gzipLevel ?? 6)
        } else if (this.#zstdStream && this.#zstd) {
          // The members are one zstd frame; the manifest a frame of its own in front of it.
          await this.#zstdStream.end()
          prefix = compressFrame(this.#zstd, head, this.#options.zstdLevel ?? DEFAULT_ZSTD_LEVEL)
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
    this.#zstdStream?.destroy()
    this.#segments?.destroy()
    await this.#output.abort()
  }

  /** Deflates the grouped small members as one segment. */
  async #flushGroup(): Promise<void> {
    const group = this.#group
    if (group.members.length === 0 || !this.#segments) return
    this.#group = { parts: [], bytes: 0, members: [] }
    const segment = await this.#segments.segment(group.parts)
    for (const index of group.members) this.#segmentOf[index] = segment
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new ShardWriteError(`the shard writer is ${this.#state}`, { archiveKey: this.archiveKey })
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) return
    this.#regionBytes += bytes.byteLength
    if (this.#gzip) await this.#gzip.write(bytes)
    else if (this.#zstdStream) await this.#zstdStream.write(bytes)
    else await this.#output.add(bytes)
  }

  /**
   * The head of a seekable gzip shard (gzip header, the manifest's deflate data, padding); the
   * trailer goes to the end of the body. gz_offset counts from the start of the object, whose
   * first bytes are the compressed manifest itself: choose where the members start (a little past
   * the manifest's compressed size), write the offsets from there, and pad the compressed manifest
   * with empty deflate blocks so that it ends exactly there.
   */
  async #seekableGzipHead(): Promise<Uint8Array> {
    const level = this.#options.gzipLevel ?? 6
    const body = (this.#segments as SegmentDeflater).result()
    const fields = ['gz_offset', 'gz_size'] as const
    let base = GZIP_HEADER_BYTES + deflateHead(this.#manifestRegion({ base: 0, fields }), level).byteLength + 64
    let head = this.#manifestRegion({ base, fields })
    let deflated = deflateHead(head, level)
    for (let round = 0; base - GZIP_HEADER_BYTES - deflated.byteLength < 9; round++) {
      if (round > 8) throw new ShardWriteError('the internal manifest size did not settle', { archiveKey: this.archiveKey })
      base = GZIP_HEADER_BYTES + deflated.byteLength + 64 * 2 ** (round + 1)
      head = this.#manifestRegion({ base, fields })
      deflated = deflateHead(head, level)
    }
    await this.#output.add(gzipTrailer(head, body.crc, body.length))
    return Buffer.concat([gzipHeader(), deflated, deflatePadding(base - GZIP_HEADER_BYTES - deflated.byteLength)])
  }

  /**
   * The head of a seekable zstd shard: the manifest as one zstd frame, then a skippable frame that
   * pads it to where the member frames start. zst_offset counts from the start of the object, so,
   * as with gzip, choose that start a little past the compressed manifest, write the offsets from
   * there, compress, and pad up to it (a skippable frame takes 8 bytes or more: grow the margin
   * until it fits). Every frame is independent: nothing else to stitch.
   */
  #seekableZstdHead(zstd: ZstdFunctions): Uint8Array {
    const level = this.#options.zstdLevel ?? DEFAULT_ZSTD_LEVEL
    const fields = ['zst_offset', 'zst_size'] as const
    let base = compressFrame(zstd, this.#manifestRegion({ base: 0, fields }), level).byteLength + SKIPPABLE_HEADER_BYTES + 64
    for (let round = 0; ; round++) {
      const frame = compressFrame(zstd, this.#manifestRegion({ base, fields }), level)
      const padding = base - frame.byteLength
      if (padding >= SKIPPABLE_HEADER_BYTES) return Buffer.concat([frame, paddingFrame(padding)])
      if (round > 8) throw new ShardWriteError('the internal manifest size did not settle', { archiveKey: this.archiveKey })
      base = frame.byteLength + SKIPPABLE_HEADER_BYTES + 64 * 2 ** (round + 1)
    }
  }

  /**
   * The tar header and body of the internal manifest, with every member's offset: offsets count
   * from the start of the archive, whose first bytes are this very region, so its length is found
   * by iterating until it no longer changes (it is a multiple of 512; a few rounds at most). With
   * `located` (seekable gzip or zstd), each entry also gets the offset of its segment (frame), from
   * the start of the object (= `base` + the segment's offset in the compressed body), and its size.
   */
  #manifestRegion(located: { base: number; fields: LocationFields } | undefined): Buffer {
    let regionLength = 0
    for (let round = 0; round < 16; round++) {
      const text = this.#entries
        .map((member, i) => {
          const entry: FileEntry = { ...member, offset: regionLength + (this.#offsets[i] as number) }
          const segment = this.#segmentOf[i]
          if (located && segment) {
            entry[located.fields[0]] = located.base + segment.offset
            entry[located.fields[1]] = segment.size
          }
          return `${serializeEntry(entry)}\n`
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
