/**
 * The local files `put` and `pack` upload: a file, or every regular file under a folder
 * (recursively), each with its path relative to that folder in `/` form, in a stable order
 * (sorted by relative path). Symbolic links and other non-regular entries are skipped and
 * reported, never followed: nothing outside the folder is uploaded by accident.
 *
 * @example
 * ```ts
 * import { listLocalFiles } from '@s3exchange/cli'
 *
 * const { files, skipped } = await listLocalFiles('./samples')
 * // files: [{ path: '/abs/samples/a/1.wav', relativePath: 'a/1.wav', size: 3120 }, …]
 * ```
 */
import { lstat, readdir } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'

/** One local file to upload. */
export interface LocalFile {
  /** Absolute path. */
  path: string
  /** Path relative to the folder given, with `/` separators (for a single file: its name). */
  relativePath: string
  /** Size in bytes. */
  size: number
}

/** What {@link listLocalFiles} found. */
export interface LocalFiles {
  /** True when the path given is a folder. */
  isDirectory: boolean
  /** The regular files, sorted by relative path. */
  files: LocalFile[]
  /** Relative paths of what was skipped (links, sockets, ...). */
  skipped: string[]
}

/** Lists a file, or the regular files under a folder; see the module comment. */
export async function listLocalFiles(path: string): Promise<LocalFiles> {
  const root = resolve(path)
  const info = await lstat(root)
  if (info.isFile()) return { isDirectory: false, files: [{ path: root, relativePath: basename(root), size: info.size }], skipped: [] }
  if (!info.isDirectory()) throw new Error(`${path} is neither a file nor a folder`)
  const files: LocalFile[] = []
  const skipped: string[] = []
  async function walk(dir: string, prefix: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const relativePath = prefix ? `${prefix}/${entry.name}` : entry.name
      const absolute = join(dir, entry.name)
      if (entry.isDirectory()) await walk(absolute, relativePath)
      else if (entry.isFile()) files.push({ path: absolute, relativePath, size: (await lstat(absolute)).size })
      else skipped.push(relativePath)
    }
  }
  await walk(root, '')
  files.sort((a, b) => (a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0))
  skipped.sort()
  return { isDirectory: true, files, skipped }
}

/** `prefix/relative`, with one `/` between (none when the prefix is empty). */
export function joinKey(prefix: string, relativePath: string): string {
  const base = prefix.replace(/\/+$/, '')
  return base === '' ? relativePath : `${base}/${relativePath}`
}
