/**
 * Reading a shard's members after a given one, for a traversal resumed inside a shard: with an
 * index that locates that member (shards this library writes: plain tar, seekable gzip, zstd),
 * one small GET of the archive's head and one ranged GET from that member to the end of the
 * members, pinned to the archive's ETag; otherwise (or when the archive changed since its head
 * was read) one streaming GET of the archive, skipping the members up to it unread. The member
 * resumed after must still be where the cursor saw it: else `CursorMismatchError` (`reason: 'shard'`).
 *
 * @example
 * ```ts
 * import { readShardMembersAfter } from '@s3exchange/core/internals'
 *
 * const shard = { kind: 'shard', archive_key: 'ds/shards/shard-00000.tar' } as const
 * for await (const { entry, body } of readShardMembersAfter(ctx, shard, { index: 41, path: '0041.wav' })) … // 0042.wav on
 * ```
 */
import { type FileEntry, internalManifestPath, type ShardEntry } from '../format/entries.js'
import { CursorMismatchError, ObjectChangedError } from '../format/errors.js'
import { effectiveLimits } from '../format/limits.js'
import type { EntryWithBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { type ArchiveIndex, isLocated, readArchiveHead } from './archive-index.js'
import { streamedMemberEntry } from './internal-manifest.js'
import { type ShardReadOptions, scanArchive, yieldMember } from './scan-archive.js'
import { isRegularFile, readTarMembers } from './tar-reader.js'
import { tarHeaderSize } from './tar-writer.js'

/** The member a resumed read starts after: its index among the archive's regular members, and its path. */
export interface MemberMark {
  index: number
  path: string
}

/** The members of a shard after `after`, as `readShardMembers` yields them; see the module comment. */
export async function* readShardMembersAfter(
  ctx: S3Context,
  shard: ShardEntry,
  after: MemberMark,
  options: ShardReadOptions = {},
): AsyncGenerator<EntryWithBody<FileEntry>> {
  const archiveKey = shard.archive_key
  const path = internalManifestPath(shard)
  const head = await readArchiveHead(ctx, archiveKey, { internalManifestPath: path })
  if (head === undefined) throw new CursorMismatchError(archiveKey, 'missing', 'the archive the cursor points into no longer exists')
  const index = head.index
  const mark = index?.byPath.get(after.path)
  if (index && mark && isLocated(index, mark) && head.whole === undefined) {
    try {
      yield* rangedAfter(ctx, index, mark, after, path, options)
      return
    } catch (error) {
      // The archive changed since its head was read: read it whole below (its members are checked there).
      if (!(error instanceof ObjectChangedError)) throw error
    }
  }
  let seen = 0
  const scanned = scanArchive(ctx, archiveKey, { ...options, internalManifestPath: path, whole: head.whole })
  for await (const member of scanned) {
    const at = seen++
    if (at < after.index) continue
    if (at === after.index) {
      if (member.name !== after.path) throw moved(archiveKey, after, member.name)
      continue
    }
    yield { entry: streamedMemberEntry(member, member.listed, archiveKey), body: member.body }
  }
  if (seen <= after.index) throw moved(archiveKey, after, undefined)
}

/** The members after `mark`'s, out of one ranged GET from `mark`'s member (or its gzip segment, zstd frame) on. */
async function* rangedAfter(
  ctx: S3Context,
  index: ArchiveIndex,
  mark: FileEntry,
  after: MemberMark,
  manifestPath: string,
  options: ShardReadOptions,
): AsyncGenerator<EntryWithBody<FileEntry>> {
  const archiveKey = index.archiveKey
  const limits = effectiveLimits(ctx.limits, options)
  const [start, end] = rangeFrom(index, mark)
  const listedAfter = index.entries.length - 1 - index.entries.indexOf(mark)
  const body = await getObjectBody(ctx, archiveKey, { start, end, ifMatch: index.etag })
  const members = readTarMembers(body, { archiveKey, signal: ctx.signal, rawDeflate: index.compression === 'gzip' })
  try {
    let found = false
    let yielded = 0
    for await (const member of members) {
      if (!found) {
        found = member.name === after.path
        continue
      }
      if (!isRegularFile(member) || member.name === manifestPath) continue
      for await (const scanned of yieldMember(member, index.byPath, archiveKey, limits.maxMemberBytes, options.verify)) {
        yield { entry: streamedMemberEntry(scanned, scanned.listed, archiveKey), body: scanned.body }
      }
      // A gzip or zstd range ends with the last member's segment: stop there, before the end of the deflate stream.
      if (scanned(index, member.name) && ++yielded >= listedAfter && index.compression !== null) return
    }
    if (!found) throw moved(archiveKey, after, undefined)
  } finally {
    await members.return(undefined)
  }
}

function scanned(index: ArchiveIndex, name: string): boolean {
  return index.byPath.has(name)
}

/** The byte range from the start of `mark`'s member (its header, gzip segment or zstd frame) to the end of the members. */
function rangeFrom(index: ArchiveIndex, mark: FileEntry): [number, number | undefined] {
  if (index.compression === null) {
    return [(mark.offset as number) - tarHeaderSize({ name: mark.member_path as string, size: mark.size_bytes as number }), undefined]
  }
  const [offsetField, sizeField] = index.compression === 'gzip' ? ['gz_offset', 'gz_size'] : ['zst_offset', 'zst_size']
  let end = 0
  for (const entry of index.entries) {
    if (isLocated(index, entry)) end = Math.max(end, (entry[offsetField] as number) + (entry[sizeField] as number) - 1)
  }
  return [mark[offsetField] as number, end]
}

function moved(archiveKey: string, after: MemberMark, found: string | undefined): CursorMismatchError {
  const what = found === undefined ? 'the archive has fewer members' : `member ${after.index} is now ${found}`
  return new CursorMismatchError(
    archiveKey,
    'shard',
    `the cursor was after member ${after.index} (${after.path}), but ${what}: the archive was rewritten`,
  )
}
