/**
 * Downloading to local disk, safely. `downloadInto(dir)` is the sink that writes every object of
 * an iteration under `dir`: loose objects under their key's basename (as Python does), archive
 * members under their path in the archive; `downloadObject` writes one object. Absolute paths,
 * paths with `..`, names longer than 255 bytes, two objects that map to one file, and a file where
 * another object needs a folder (members `a` and `a/b`) are refused with `UnsafePathError`: a
 * `DownloadPlan` checks each path against the others before its object is written, and when the
 * paths are known up front (the store plans a manifest's, or a list of keys', before the first
 * byte) a clash is found before anything is written. Relative paths are resolved strictly inside
 * the folder (`safeLocalPath`), parents are created and checked again after symlinks are
 * resolved, and the data goes to a temporary file with a short random name in the same folder,
 * renamed to its final name only when complete (`writeFileAtomically`). A download cut off midway
 * leaves no file under the final name, and nothing is ever written outside the folder or through a link.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { downloadInto, expandRefs, expandShards, fetchBodies, readManifest } from '@s3exchange/core'
 *
 * const paths = await pipe(
 *   readManifest(ctx, 'ds/manifest.jsonl'), expandRefs(ctx), expandShards(ctx, { bodies: true }), fetchBodies(ctx),
 *   downloadInto('/data/ds'),
 * ) // Map of key → local path
 * ```
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, realpath, rename, unlink } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { openObject } from '../archive/open-object.js'
import type { OpenMemberOptions } from '../archive/random-access.js'
import { type ManifestEntry, objectKeyOf } from '../format/entries.js'
import { UnsafePathError } from '../format/errors.js'
import { type ProgressCounter, type ProgressOptions, progressCounter } from '../format/progress.js'
import type { EntryWithBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'

/**
 * The absolute path of `relativePath` inside `root`, or `UnsafePathError` when it would not stay
 * inside. `/` and `\` both separate segments; empty and `.` segments are dropped.
 */
export function safeLocalPath(root: string, relativePath: string, key: string): string {
  const base = resolve(root)
  const target = resolve(base, ...localSegments(relativePath, key))
  if (!target.startsWith(base + sep)) throw new UnsafePathError('the path leaves the target folder', { key, path: relativePath })
  return target
}

/** Longest file or folder name, in bytes (the common limit of Linux, macOS and Windows file systems). */
export const MAX_NAME_BYTES = 255

/** The segments of a relative local path, checked as `safeLocalPath` says. */
function localSegments(relativePath: string, key: string): string[] {
  const refuse = (why: string) => new UnsafePathError(why, { key, path: relativePath })
  if (typeof relativePath !== 'string' || relativePath === '') throw refuse('the path is empty')
  if (relativePath.includes('\u0000')) throw refuse('the path contains a NUL character')
  if (/^[\\/]/.test(relativePath) || /^[A-Za-z]:/.test(relativePath)) throw refuse('the path is absolute')
  const segments = relativePath.split(/[\\/]+/).filter((segment) => segment !== '' && segment !== '.')
  if (segments.includes('..')) throw refuse("the path contains '..'")
  if (segments.length === 0) throw refuse('the path names no file')
  const long = segments.find((segment) => Buffer.byteLength(segment) > MAX_NAME_BYTES)
  if (long !== undefined) throw refuse(`the name ${JSON.stringify(long)} is longer than ${MAX_NAME_BYTES} bytes`)
  return segments
}

/**
 * The files of one download, checked against each other as they are added: two objects may not
 * map to one file, and a file may not stand where another object needs a folder (`a` and `a/b`).
 * `add` returns the absolute path, or throws `UnsafePathError` (also for what `safeLocalPath`
 * refuses). Adding the same key at the same path again is fine.
 */
export class DownloadPlan {
  readonly root: string
  /** File (relative, `/`-separated) → the key written there. */
  readonly #files = new Map<string, string>()
  /** Folder → a key whose file is inside it. */
  readonly #folders = new Map<string, string>()

  constructor(root: string) {
    this.root = resolve(root)
  }

  /** Files planned so far. */
  get size(): number {
    return this.#files.size
  }

  add(key: string, relativePath: string): string {
    const segments = localSegments(relativePath, key)
    const refuse = (why: string) => new UnsafePathError(why, { key, path: relativePath })
    const path = segments.join('/')
    const owner = this.#files.get(path)
    if (owner !== undefined && owner !== key) throw refuse(`${owner} is written to the same file`)
    const inside = this.#folders.get(path)
    if (inside !== undefined) throw refuse(`it would be a file where ${inside} needs a folder`)
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/')
      const file = this.#files.get(folder)
      if (file !== undefined) throw refuse(`${JSON.stringify(folder)} would have to be a folder, but it is the file of ${file}`)
    }
    this.#files.set(path, key)
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/')
      if (!this.#folders.has(folder)) this.#folders.set(folder, key)
    }
    const target = resolve(this.root, ...segments)
    if (!target.startsWith(this.root + sep)) throw refuse('the path leaves the target folder')
    return target
  }
}

/** What a file system's refusal means for a download, as an `UnsafePathError` (others pass through). */
function asUnsafePath(error: unknown, key: string, path: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const why =
    code === 'ENOTDIR' || code === 'EEXIST'
      ? 'a file is in the way of a folder it needs'
      : code === 'EISDIR'
        ? 'a folder is in the way of the file'
        : code === 'ENAMETOOLONG'
          ? 'the path is too long for the file system'
          : undefined
  return why === undefined ? error : Object.assign(new UnsafePathError(why, { key, path }), { cause: error })
}

/** Options for {@link writeFileAtomically}. */
export interface WriteFileOptions {
  /** The folder nothing may be written outside of (checked after resolving links). */
  root: string
  /** The key being written, for error messages. */
  key: string
}

/**
 * Streams `data` into `target` through a temporary file in the same folder, renamed when
 * complete; on failure the temporary file is removed and `target` is left as it was. Resolves to
 * the bytes written.
 */
export async function writeFileAtomically(
  data: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  target: string,
  options: WriteFileOptions,
): Promise<number> {
  let realFolder: string
  try {
    realFolder = await makeFolderInside(options.root, dirname(target), () => {
      return new UnsafePathError('a link in the path leads outside the target folder', { key: options.key, path: target })
    })
  } catch (error) {
    throw asUnsafePath(error, options.key, target)
  }
  // A short name (not the target's plus a suffix), so that any name the target may have fits.
  const temporary = join(realFolder, `.s3x-${randomBytes(6).toString('hex')}.part`)
  // 'wx': create a new file, never open an existing one (nor follow a link planted in its place).
  const file = createWriteStream(temporary, { flags: 'wx' })
  try {
    await pipeline(data as AsyncIterable<Uint8Array>, file)
    await rename(temporary, join(realFolder, basename(target)))
    return file.bytesWritten
  } catch (error) {
    // A source that fails at once fails while the file is still being opened: wait until the
    // stream has closed it, or the file would appear after it was removed.
    if (!file.closed) await new Promise<void>((closed) => file.once('close', () => closed()))
    await unlink(temporary).catch(() => {})
    throw asUnsafePath(error, options.key, target)
  }
}

/**
 * Creates `folder` under `root` one level at a time, checking each level after resolving links, so
 * that no folder is ever created through a link that leads outside `root`. Resolves to the real path.
 */
async function makeFolderInside(root: string, folder: string, refuse: () => Error): Promise<string> {
  await mkdir(root, { recursive: true })
  const realRoot = await realpath(root)
  const inside = (path: string) => path === realRoot || path.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)
  const rest = relative(resolve(root), resolve(folder))
  if (rest === '..' || rest.startsWith(`..${sep}`) || isAbsolute(rest)) throw refuse()
  let current = realRoot
  for (const segment of rest.split(sep).filter((s) => s !== '')) {
    const next = join(current, segment)
    try {
      await mkdir(next)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    current = await realpath(next)
    if (!inside(current)) throw refuse()
  }
  return current
}

/** The relative local path of an object: an archive member's path, or a loose key's basename. */
export function localPathOf(entry: ManifestEntry): string {
  if (entry.kind === 'file' && typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') return entry.member_path
  return posix.basename(objectKeyOf(entry))
}

/** Options for {@link downloadInto}. */
export interface DownloadIntoOptions extends ProgressOptions {
  /**
   * The plan the paths are checked against (one made for `dir` and filled up front, so that clashes
   * are found before anything is written). Default: a new one, filled as objects come. A plan given
   * is taken as complete: its files are the `totalObjects` of the progress reports.
   */
  plan?: DownloadPlan
}

/** The sink that writes every object of an iteration under `dir`; resolves to a map of key to local path. See the module comment. */
export function downloadInto(dir: string, options: DownloadIntoOptions = {}) {
  return async function downloadIntoSink(items: AsyncIterable<EntryWithBody> | Iterable<EntryWithBody>): Promise<Map<string, string>> {
    const root = resolve(dir)
    const plan = options.plan ?? new DownloadPlan(root)
    const written = new Map<string, string>()
    // Progress: each file once written (renamed into place), with its bytes.
    const progress = progressCounter(options, { totalObjects: options.plan?.size })
    for await (const { entry, body } of items) {
      const key = objectKeyOf(entry)
      try {
        const target = plan.add(key, localPathOf(entry))
        const bytes = await writeFileAtomically(body, target, { root, key })
        written.set(key, target)
        progress?.addObjects(1, bytes, key)
      } finally {
        body.destroy()
      }
    }
    return written
  }
}

/** Options for {@link downloadObject}: how an archive member is opened, and progress. */
export interface DownloadObjectOptions extends OpenMemberOptions, ProgressOptions {}

/**
 * Writes one object (or archive member, by virtual key) to `localPath`, atomically. Resolves to
 * the absolute path. Progress: bytes as each chunk is written to the file (out of the object's
 * size when the server said it), then the object once the file is in place.
 */
export async function downloadObject(ctx: S3Context, key: string, localPath: string, options: DownloadObjectOptions = {}): Promise<string> {
  const target = resolve(localPath)
  const body = await openObject(ctx, key, options)
  const progress = progressCounter(options, { totalObjects: 1, totalBytes: body.size })
  try {
    await writeFileAtomically(progress ? counted(body, progress, key) : body, target, { root: dirname(target), key })
  } finally {
    body.destroy()
  }
  progress?.addObjects(1, 0, key)
  return target
}

/** The chunks of `body`, each reported as written once the next is asked for (that is, once the file took it). */
async function* counted(body: AsyncIterable<Uint8Array>, progress: ProgressCounter, key: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    yield chunk
    progress.addBytes(chunk.byteLength, key)
  }
}
