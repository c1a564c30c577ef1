/**
 * Building tar and tar.gz archives in memory for tests, including the hostile ones a reader must
 * survive: members in any order, links, directories, `..` paths, truncations.
 *
 * @example
 * ```ts
 * import { buildTar } from '@s3exchange/testing'
 *
 * const archive = await buildTar(
 *   [
 *     { name: '__manifest__.jsonl', data: '{"kind":"file","key":"a.tar#x.txt","member_path":"x.txt"}\n' },
 *     { name: 'x.txt', data: 'hello' },
 *     { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
 *   ],
 *   { gzip: true },
 * )
 * ```
 */
import { gzipSync } from 'node:zlib'
import type { ShardEntry } from '@s3exchange/core'
import { type Header, pack } from 'tar-stream'

/** One member to put in an archive. */
export interface TarMemberSpec {
  /** Path inside the archive. Long and non-ASCII names get pax headers. */
  name: string
  /** Data of a regular file (a string is written as UTF-8). */
  data?: Uint8Array | string
  /** Member type. Default `file`. */
  type?: Header['type']
  /** Target of a link. */
  linkname?: string
}

/** Options for {@link buildTar}. */
export interface BuildTarOptions {
  /** Compress the archive with gzip. Default false. */
  gzip?: boolean
}

/** Builds an archive of the members, in order. */
export async function buildTar(members: TarMemberSpec[], options: BuildTarOptions = {}): Promise<Buffer> {
  const archive = pack()
  const chunks: Buffer[] = []
  const collected = (async () => {
    for await (const chunk of archive) chunks.push(chunk as Buffer)
  })()
  for (const member of members) {
    const data = typeof member.data === 'string' ? Buffer.from(member.data) : (member.data ?? new Uint8Array(0))
    const type = member.type ?? 'file'
    const header: Header = {
      name: member.name,
      type,
      size: type === 'file' ? data.byteLength : 0,
      mode: type === 'directory' ? 0o755 : 0o644,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
      linkname: member.linkname ?? '',
    }
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve())
      if (type === 'file') archive.entry(header, data, done)
      else archive.entry(header, done)
    })
  }
  archive.finalize()
  await collected
  const tar = Buffer.concat(chunks)
  return options.gzip ? gzipSync(tar) : tar
}

/** An internal manifest for members, one `file` entry per member, as Python writes it. */
export function internalManifestFor(archiveKey: string, members: { name: string; data?: Uint8Array | string; id?: string }[]): string {
  return members
    .map((member) => {
      const size = typeof member.data === 'string' ? Buffer.byteLength(member.data) : (member.data?.byteLength ?? 0)
      return `${JSON.stringify({
        kind: 'file',
        key: `${archiveKey}#${member.name}`,
        member_path: member.name,
        id: member.id ?? null,
        meta: null,
        size_bytes: size,
      })}\n`
    })
    .join('')
}

/**
 * A shard as another tool writes it (Python s3exchange does): the internal manifest first, without
 * member offsets, then `count` members `f/<m>.txt` holding `foreign <m> ` 30 times. Gives the
 * archive's bytes, to put at `archiveKey`, and its shard entry.
 */
export async function foreignShardArchive(
  archiveKey: string,
  count: number,
  options: BuildTarOptions = {},
): Promise<{ archive: Buffer; entry: ShardEntry }> {
  const members = Array.from({ length: count }, (_, m) => ({ name: `f/${m}.txt`, data: `foreign ${m} `.repeat(30) }))
  const archive = await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archiveKey, members) }, ...members], options)
  const entry: ShardEntry = { kind: 'shard', archive_key: archiveKey, format: 'tar', compression: options.gzip ? 'gzip' : null, count }
  return { archive, entry }
}
