/**
 * Random access to shard members: one member of an archive by its path. With an index that
 * locates it (see `archive-index.ts`: shards this library writes: plain tar, seekable gzip, zstd), that is one ranged GET, checked
 * against the tar header it lands on and pinned to the archive's ETag with `If-Match`; otherwise
 * the archive is streamed from the start up to the member, as Python reads it.
 *
 * @example
 * ```ts
 * import { LruCache, openArchiveMember } from '@s3exchange/core'
 *
 * const indexCache = new LruCache(256)
 * const body = await openArchiveMember(ctx, 'ds/shards/shard-00000.tar', '0042.wav', { indexCache })
 * ```
 */
import { Readable } from 'node:stream'
import { DEFAULT_INTERNAL_MANIFEST_PATH, type FileEntry } from '../format/entries.js'
import { ObjectChangedError, ObjectNotFoundError, ShardReadError, UnsupportedCompressionError } from '../format/errors.js'
import { emitEvent } from '../format/events.js'
import { virtualKey } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { ObjectBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { type ArchiveIndex, type ArchiveIndexCache, type ArchiveIndexOptions, isLocated, readArchiveHead } from './archive-index.js'
import { type ScannedMember, scanArchive } from './scan-archive.js'
import { isRegularFile, memberBody, readTarMembers, type TarMember, toShardReadError } from './tar-reader.js'
import { paddedSize, tarHeaderSize } from './tar-writer.js'

/**
 * Reads one member with one ranged GET, from where its index entry says; the tar header found
 * there must name the member and its size. Resolves to undefined when the bytes are not what the
 * index promised (then stream the archive instead); throws `ObjectChangedError` when the archive
 * changed since it was indexed.
 */
export async function openLocatedMember(ctx: S3Context, index: ArchiveIndex, entry: FileEntry): Promise<ObjectBody | undefined> {
  const memberPath = entry.member_path as string
  const size = entry.size_bytes as number
  const archiveKey = index.archiveKey
  const plain = index.compression === null
  const gzip = index.compression === 'gzip'
  const [start, end] = plain
    ? [(entry.offset as number) - tarHeaderSize({ name: memberPath, size }), (entry.offset as number) + paddedSize(size) - 1]
    : gzip
      ? [entry.gz_offset as number, (entry.gz_offset as number) + (entry.gz_size as number) - 1]
      : [entry.zst_offset as number, (entry.zst_offset as number) + (entry.zst_size as number) - 1]
  if (start < 0 || end < start || (index.size !== undefined && end >= index.size)) return undefined
  const range = await getObjectBody(ctx, archiveKey, { start, end, ifMatch: index.etag })
  // A gzip segment is raw deflate; a zstd frame is recognised by its magic number.
  const members = readTarMembers(range, { archiveKey, signal: ctx.signal, rawDeflate: gzip })
  try {
    // A plain tar range starts at the member's header; a gzip segment or zstd frame may hold a few
    // small members before it (they are grouped), each read past unread.
    let member: TarMember | undefined
    for (let next = await members.next(); !next.done; next = await members.next()) {
      if (next.value.name === memberPath || plain) {
        member = next.value
        break
      }
    }
    // In a plain tar the data must start exactly where the index says: zero blocks skipped before
    // a header would otherwise let a wrong offset reach the member with its data cut short.
    const misplaced = plain && member !== undefined && member.dataOffset !== (entry.offset as number) - start
    if (!member || member.name !== memberPath || member.size !== size || !isRegularFile(member) || misplaced) {
      await members.return(undefined)
      return undefined
    }
    if (index.compression === 'zstd') return frameCheckedBody(member, members, archiveKey, entry.key)
    return memberBody(
      member,
      archiveKey,
      entry.key,
      () => {
        void members.return(undefined)
      },
      entry,
    )
  } catch (error) {
    await members.return(undefined)
    if (error instanceof ObjectChangedError) throw error
    return undefined
  }
}

/**
 * The body of a member read out of one zstd frame. The frame's checksum comes at its end, after
 * the member's data (and the members grouped after it): the body ends only once the whole frame
 * has been read and its checksum found right, so that a corrupt frame fails the read with a
 * `ShardReadError` naming the member rather than handing out wrong bytes.
 */
function frameCheckedBody(member: TarMember, members: AsyncGenerator<TarMember>, archiveKey: string, key: string): ObjectBody {
  const memberPath = member.name
  async function* checked(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of member.stream) yield chunk
      // The rest of the frame: later members skipped, the checksum checked.
      for (let next = await members.next(); !next.done; next = await members.next()) {}
    } catch (error) {
      throw namingMember(error, archiveKey, memberPath)
    }
  }
  const source = Readable.from(checked(), { objectMode: false })
  return ObjectBody.fromSource({ key, size: member.size, archiveKey, memberPath }, source, {
    wrapError: (error) => toShardReadError(error, archiveKey, memberPath) as Error,
    release: (complete) => {
      if (!complete) source.destroy()
      void members.return(undefined)
    },
  })
}

/**
 * A `ShardReadError` that names no member (the reader was between members, or past the one read)
 * made to name `memberPath`: the read that failed was for that member.
 */
function namingMember(error: unknown, archiveKey: string, memberPath: string): unknown {
  if (!(error instanceof ShardReadError) || error.memberPath !== undefined || error instanceof UnsupportedCompressionError) return error
  return new ShardReadError(error.reason, { archiveKey, memberPath, cause: error.cause ?? error })
}

/** Options for {@link openArchiveMember}. */
export interface OpenMemberOptions extends Pick<ArchiveIndexOptions, 'internalManifestPath'> {
  /** Where archive indexes are kept between calls (a `LruCache`); without one each call reads the head again. */
  indexCache?: ArchiveIndexCache
}

/**
 * Opens one member of an archive. With an index that locates it (shards this library writes),
 * that is one ranged GET (after one small GET of the archive's head, unless the index is cached);
 * otherwise the archive is streamed up to the member (from memory when the head read held the
 * whole archive). Resolves to undefined when the archive does not exist; throws
 * `ObjectNotFoundError` (with the virtual key) when the archive has no such member,
 * `ShardReadError` when it is not a regular file or the archive is unreadable.
 */
export async function openArchiveMember(
  ctx: S3Context,
  archiveKey: string,
  memberPath: string,
  options: OpenMemberOptions = {},
): Promise<ObjectBody | undefined> {
  checkOptions('openArchiveMember', options)
  const cache = options.indexCache
  const cached = cache?.get(archiveKey)
  let index = cached
  let whole: Uint8Array | undefined
  if (index === undefined) {
    let head: Awaited<ReturnType<typeof readArchiveHead>>
    try {
      head = await readArchiveHead(ctx, archiveKey, options)
    } catch (error) {
      throw toShardReadError(error, archiveKey, memberPath)
    }
    if (head === undefined) return undefined
    whole = head.whole
    if (head.index) {
      index = head.index
      cache?.set(archiveKey, index)
    }
  }
  const entry = index?.byPath.get(memberPath)
  if (index && entry && isLocated(index, entry)) {
    try {
      const body = await openLocatedMember(ctx, index, entry)
      if (body) return body
    } catch (error) {
      if (!(error instanceof ObjectChangedError)) throw error
      // The archive was replaced since it was indexed: index it again (once), so that the member
      // and its entry come from the version there now.
      cache?.delete(archiveKey)
      if (cached !== undefined) return openArchiveMember(ctx, archiveKey, memberPath, options)
    }
    // The index did not hold: forget it and read the archive itself.
    cache?.delete(archiveKey)
    emitEvent(ctx, {
      type: 'fallback',
      key: virtualKey(archiveKey, memberPath),
      fallback: 'streamed-member',
      reason: 'the bytes at the offset the archive index gives are not the member: streaming the archive instead',
    })
  }
  return scanForMember(ctx, archiveKey, memberPath, whole, options)
}

/**
 * Streams an archive (from memory when given) up to one member; its body carries its internal
 * manifest entry (`listed`) from the same read. Undefined when the archive does not exist.
 */
async function scanForMember(
  ctx: S3Context,
  archiveKey: string,
  memberPath: string,
  whole: Uint8Array | undefined,
  options: OpenMemberOptions,
): Promise<ObjectBody | undefined> {
  // The internal manifest itself is asked for as any member (and lists nothing for itself).
  const manifestPath = options.internalManifestPath ?? DEFAULT_INTERNAL_MANIFEST_PATH
  const members = scanArchive(ctx, archiveKey, {
    only: new Set([memberPath]),
    requireManifest: false,
    internalManifestPath: memberPath === manifestPath ? null : manifestPath,
    ...(whole === undefined ? {} : { whole }),
  })
  let next: IteratorResult<ScannedMember>
  try {
    next = await members.next()
  } catch (error) {
    await members.return(undefined)
    if (error instanceof ShardReadError && error.cause instanceof ObjectNotFoundError && error.memberPath === undefined) return undefined
    throw namingMember(error, archiveKey, memberPath)
  }
  if (next.done) throw new ObjectNotFoundError(virtualKey(archiveKey, memberPath), { detail: 'the archive has no such member' })
  const body = next.value.body
  // The scan stays open while the body streams; it is closed when the body is let go.
  body.once('close', () => void members.return(undefined))
  return body
}

/** Opens one member of a shard, as `openArchiveMember`; a missing archive is a `ShardReadError` whose cause is `ObjectNotFoundError`. */
export async function openShardMember(
  ctx: S3Context,
  archiveKey: string,
  memberPath: string,
  options: OpenMemberOptions = {},
): Promise<ObjectBody> {
  const body = await openArchiveMember(ctx, archiveKey, memberPath, options)
  if (body !== undefined) return body
  throw new ShardReadError('the archive does not exist', { archiveKey, memberPath, cause: new ObjectNotFoundError(archiveKey) })
}
