/**
 * An archive's *index*: its internal manifest, read from the head of the archive with one small
 * ranged GET (more only when the manifest is larger). For shards this library wrote it holds each
 * member's `offset` (plain tar), `gz_offset` / `gz_size` (seekable gzip) or `zst_offset` /
 * `zst_size` (zstd), which is what lets
 * `openArchiveMember` read one member with one ranged GET. Indexes can be kept between calls in a
 * bounded cache (`LruCache`), as the store does.
 *
 * @example
 * ```ts
 * import { readArchiveHead } from '@s3exchange/core/internals'
 *
 * const head = await readArchiveHead(ctx, 'ds/shards/shard-00000.tar')
 * head?.index?.byPath.get('0042.wav') // { …, offset: 1536, size_bytes: 4096 }
 * ```
 */
import { Readable } from 'node:stream'
import { DEFAULT_INTERNAL_MANIFEST_PATH, type FileEntry } from '../format/entries.js'
import { ObjectNotFoundError, S3RequestError } from '../format/errors.js'
import { checkOptions } from '../format/options.js'
import type { S3Context } from '../s3/context.js'
import { collectSource, openObjectSource } from '../s3/object-source.js'
import { indexByPath, parseInternalManifest } from './internal-manifest.js'
import { isRegularFile, readTarMembers, type SniffedCompression, sniffCompression } from './tar-reader.js'
import { paddedSize } from './tar-writer.js'
import { ZstdFrameSplitter } from './zstd-frames.js'

/** What is known of an archive for random access to its members. */
export interface ArchiveIndex {
  archiveKey: string
  /** The ETag of the version indexed; ranged reads insist on it. */
  etag: string | undefined
  /** The compression found in the archive's first bytes (`null`: a plain tar). */
  compression: SniffedCompression
  /** Size of the archive object. */
  size: number | undefined
  /** The internal manifest's entries, in order, as written. */
  entries: FileEntry[]
  /** The same, by member path. */
  byPath: Map<string, FileEntry>
}

/** Where indexes are kept between calls (see {@link LruCache}). */
export interface ArchiveIndexCache {
  get(archiveKey: string): ArchiveIndex | undefined
  set(archiveKey: string, index: ArchiveIndex): void
  delete(archiveKey: string): void
}

/** Options for reading an index. */
export interface ArchiveIndexOptions {
  /** Path of the internal manifest. Default `__manifest__.jsonl`. */
  internalManifestPath?: string
  /** Largest head of the archive read to find the internal manifest. Default 64 MiB. */
  maxHeadBytes?: number
}

/** What reading an archive's head found. */
export interface ArchiveHead {
  /** The index, or null when the archive has none usable (its internal manifest is not first, …). */
  index: ArchiveIndex | null
  /** The whole archive, when it fitted in the head that was read. */
  whole: Uint8Array | undefined
}

const FIRST_HEAD = 64 * 1024

/**
 * Reads the head of an archive and its internal manifest (first member). Resolves to undefined
 * when the archive does not exist.
 */
export async function readArchiveHead(
  ctx: S3Context,
  archiveKey: string,
  options: ArchiveIndexOptions = {},
): Promise<ArchiveHead | undefined> {
  checkOptions('readArchiveHead', options)
  const path = options.internalManifestPath ?? DEFAULT_INTERNAL_MANIFEST_PATH
  const maxHead = options.maxHeadBytes ?? 64 * 1024 * 1024
  for (let want = FIRST_HEAD; ; ) {
    let fetched: { bytes: Uint8Array; etag: string | undefined; total: number | undefined }
    try {
      fetched = await fetchHead(ctx, archiveKey, want)
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return undefined
      // 416: an empty object has no head.
      if (error instanceof S3RequestError && error.statusCode === 416) return { index: null, whole: new Uint8Array(0) }
      throw error
    }
    const { bytes, etag, total } = fetched
    const complete = total !== undefined ? bytes.byteLength >= total : bytes.byteLength < want
    const compression = sniffCompression(bytes)
    const head = { whole: complete ? bytes : undefined }
    if (compression !== null && compression !== 'gzip' && compression !== 'zstd') return { index: null, ...head }
    // The head is read as an archive of its own (gzip or zstd decompressed as it goes, only as far
    // as the internal manifest): a head that ends inside the manifest shows up as truncated. Of a
    // zstd head, only the whole frames are read when there are any (the manifest is a frame of
    // its own in shards this library writes): the cut frame after them would fail the read.
    const usable = compression === 'zstd' && !complete ? wholeFrames(bytes) : bytes
    const first = await firstMember(usable, archiveKey, path, ctx.limits?.maxLineBytes)
    if (first.kind === 'none') return { index: null, ...head }
    if (first.kind === 'entries') return { index: makeIndex(archiveKey, etag, compression, total, first.entries), ...head }
    // The manifest goes on past what was read.
    if (complete) return { index: null, ...head }
    const next = compression === null ? first.needed : want * 8
    if (next > maxHead) return { index: null, whole: undefined }
    want = Math.max(next, want + 1)
  }
}

async function fetchHead(
  ctx: S3Context,
  key: string,
  want: number,
): Promise<{ bytes: Uint8Array; etag: string | undefined; total: number | undefined }> {
  const { info, source } = await openObjectSource(ctx, key, { start: 0, end: want - 1 })
  const bytes = await collectSource(ctx, key, source)
  return { bytes, etag: info.etag, total: totalOf(info.contentRange) ?? (bytes.byteLength < want ? bytes.byteLength : undefined) }
}

function totalOf(contentRange: string | undefined): number | undefined {
  const match = contentRange?.match(/\/(\d+)$/)
  return match ? Number(match[1]) : undefined
}

type FirstMember = { kind: 'none' } | { kind: 'entries'; entries: FileEntry[] } | { kind: 'truncated'; needed: number }

/** The internal manifest, if it is the first regular member of these (possibly partial) archive bytes. */
async function firstMember(head: Uint8Array, archiveKey: string, path: string, maxLineBytes: number | undefined): Promise<FirstMember> {
  const tar = head
  const compressed = sniffCompression(head) !== null
  const members = readTarMembers(Readable.from([Buffer.from(head.buffer, head.byteOffset, head.byteLength)]), { archiveKey })
  try {
    for await (const member of members) {
      if (!isRegularFile(member)) continue
      if (member.name !== path) return { kind: 'none' }
      const needed = member.dataOffset + paddedSize(member.size)
      if (!compressed && needed > tar.byteLength) return { kind: 'truncated', needed }
      return { kind: 'entries', entries: await parseInternalManifest(member.stream, archiveKey, path, { maxLineBytes }) }
    }
    return { kind: 'none' }
  } catch (error) {
    // Cut inside a header: a longer head will tell. Not a tar at all: no index.
    const truncated = error instanceof Error && /truncated|unexpected end/i.test(error.message)
    return truncated && tar.byteLength > 0 ? { kind: 'truncated', needed: tar.byteLength * 2 } : { kind: 'none' }
  } finally {
    await members.return(undefined)
  }
}

/** Builds an index from an archive's internal manifest entries. */
export function makeIndex(
  archiveKey: string,
  etag: string | undefined,
  compression: SniffedCompression,
  size: number | undefined,
  entries: FileEntry[],
): ArchiveIndex {
  return { archiveKey, etag, compression, size, entries, byPath: indexByPath(entries) }
}

/** True when an index entry says where the member is, for this archive's compression. */
export function isLocated(index: ArchiveIndex, entry: FileEntry): boolean {
  if (typeof entry.size_bytes !== 'number' || typeof entry.member_path !== 'string') return false
  if (index.compression === null) return typeof entry.offset === 'number'
  if (index.compression === 'gzip') return typeof entry.gz_offset === 'number' && typeof entry.gz_size === 'number'
  if (index.compression === 'zstd') return typeof entry.zst_offset === 'number' && typeof entry.zst_size === 'number'
  return false
}

/** The leading bytes of `head` that are whole zstd frames; all of `head` when none is whole (then it is read as far as it goes). */
function wholeFrames(head: Uint8Array): Uint8Array {
  const splitter = new ZstdFrameSplitter()
  try {
    splitter.push(head) // cheap: only the frame and block headers are read
  } catch {
    // Not zstd framing past some point: the whole frames before it are still whole.
  }
  return splitter.boundary > 0 ? head.subarray(0, splitter.boundary) : head
}
