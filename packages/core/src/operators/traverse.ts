/**
 * `traverseManifest(ctx, root, opts)`: the entries of a manifest with refs inlined (depth first,
 * each manifest once, as `expandRefs`), each with its position (see `positions.ts` and
 * `format/cursor.ts`), and able to start right after a cursor's position:
 *
 * - manifests wholly before the position are not read: the root's refs before it are read from
 *   the root (to know them as visited), the manifests they name are skipped;
 * - each manifest on the way to the position is read from the position's line on, with a ranged
 *   GET pinned to the ETag the cursor recorded; when that version is gone (the manifest was
 *   appended to since), it is read from its start and its bytes up to the position are checked
 *   against the cursor's CRC-32: a manifest rewritten rather than appended to is a
 *   `CursorMismatchError`, never a silent restart;
 * - when the position is inside a shard, that shard is yielded again with the member to resume
 *   after (`ItemPosition.resumeAfter`), for the shard reader to skip what was consumed.
 *
 * With `follow`, the root is then polled for what is appended to it (see `manifest/manifest-tail.ts`)
 * and the traversal goes on with the new lines and the parts they name, until the signal fires.
 *
 * @example
 * ```ts
 * import { cursorOf, decodeCursor, traverseManifest } from '@s3exchange/core/internals'
 *
 * let cursor: string | undefined
 * for await (const entry of traverseManifest(ctx, 'ds/manifest.jsonl')) cursor = cursorOf(entry)
 * for await (const entry of traverseManifest(ctx, 'ds/manifest.jsonl', { after: decodeCursor(cursor) })) … // nothing new
 * ```
 */
import type { CursorFrame, CursorPosition } from '../format/cursor.js'
import type { ManifestEntry } from '../format/entries.js'
import {
  CursorMismatchError,
  LimitExceededError,
  ManifestNotFoundError,
  ObjectChangedError,
  ObjectNotFoundError,
  S3RequestError,
} from '../format/errors.js'
import { effectiveLimits, type ReadLimits } from '../format/limits.js'
import { type PositionedLine, positionedLines } from '../format/manifest-lines.js'
import { type TailState, tailManifest } from '../manifest/manifest-tail.js'
import type { ObjectBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { setPosition } from './positions.js'

/** Options for {@link traverseManifest}. */
export interface TraverseOptions extends Pick<ReadLimits, 'maxLineBytes' | 'maxRefDepth' | 'maxManifests'> {
  /** Start right after this position (decoded, and checked to fit this root and these options). */
  after?: CursorPosition | undefined
  /** Inline refs (default true); when false, a ref is an item like the others. */
  resolveRefs?: boolean
  /** The fingerprint of the order options, recorded in every position (see `orderFingerprint`). */
  orderFingerprint?: string
  /** Keep polling the root for appended lines, every `pollIntervalMs`, until the signal fires. */
  follow?: { pollIntervalMs: number } | undefined
  /** The root's bytes, when it is not an S3 object (a manifest of entries in memory): `root` only names it. */
  rootBytes?: (() => AsyncIterable<Uint8Array> | Iterable<Uint8Array>) | undefined
}

/** Opened manifest bytes, as lines with positions, and the ETag of the version each came from. */
interface OpenedLines {
  lines: AsyncGenerator<PositionedLine, void, undefined>
  etag: () => string | undefined
  /** True when read from the start (the lines before the resumed one come too). */
  fromStart: boolean
  tail?: TailState | undefined
}

/** The entries of a manifest, positioned, resumable; see the module comment. */
export async function* traverseManifest(
  ctx: S3Context,
  root: string,
  options: TraverseOptions = {},
): AsyncGenerator<ManifestEntry, void, undefined> {
  const limits = effectiveLimits(ctx.limits, options)
  const resolveRefs = options.resolveRefs ?? true
  const fingerprint = options.orderFingerprint ?? ''
  const after = options.after
  const visited = new Set<string>([root])
  /** Manifests visited below the root's own refs, in order (recorded in positions). */
  const deep: string[] = [...(after?.visited ?? [])]
  for (const key of deep) visited.add(key)
  let rootRefs = 0

  const open = async (
    key: string,
    depth: number,
    resume: CursorFrame | undefined,
    follow: boolean,
    referencedFrom: string | undefined,
  ): Promise<OpenedLines> => {
    const maxLineBytes = limits.maxLineBytes
    if (depth === 0 && options.rootBytes) {
      return { lines: positionedLines(options.rootBytes(), { key, maxLineBytes }), etag: () => undefined, fromStart: true }
    }
    // The root is read from its start when refs come before the position (they must be known as visited).
    const mustReadAll = resume === undefined || resume.etag === undefined || (depth === 0 && resolveRefs && (after?.rootRefs ?? 0) > 0)
    let body: ObjectBody | undefined
    let base = 0
    if (!mustReadAll && resume) {
      try {
        body = await getObjectBody(ctx, key, { start: resume.start, ifMatch: resume.etag })
        base = resume.start
      } catch (error) {
        // Changed since (appended to, or worse: the check below tells), or now shorter: read it all.
        const changed = error instanceof ObjectChangedError || (error instanceof S3RequestError && error.statusCode === 416)
        if (!changed && !(error instanceof ObjectNotFoundError)) throw error
        if (error instanceof ObjectNotFoundError) throw missing(key, depth, error, true, referencedFrom)
      }
    }
    if (body === undefined) {
      try {
        body = await getObjectBody(ctx, key)
      } catch (error) {
        if (error instanceof ObjectNotFoundError) throw missing(key, depth, error, resume !== undefined, referencedFrom)
        throw error
      }
    }
    const from = base > 0 && resume ? { offset: resume.start, crc: resume.startCrc, lineNumber: resume.line } : undefined
    if (follow) {
      const tail: TailState = { etag: body.etag, delivered: 0 }
      const source = tailManifest(ctx, key, body, tail, {
        pollIntervalMs: (options.follow as { pollIntervalMs: number }).pollIntervalMs,
        base,
      })
      return { lines: positionedLines(source, { key, maxLineBytes, from }), etag: () => tail.etag, fromStart: base === 0, tail }
    }
    const etag = body.etag
    return { lines: positionedLines(body, { key, maxLineBytes, from }), etag: () => etag, fromStart: base === 0 }
  }

  const missing = (key: string, depth: number, cause: unknown, resuming: boolean, referencedFrom: string | undefined): Error => {
    if (depth === 0 || !resuming) return new ManifestNotFoundError(key, { cause, referencedFrom })
    return new CursorMismatchError(key, 'missing', 'the manifest the cursor points into no longer exists', { cause })
  }

  const position = (frames: CursorFrame[]): CursorPosition => ({
    root,
    options: fingerprint,
    frames,
    rootRefs,
    visited: deep.slice(),
  })

  async function* walk(
    key: string,
    depth: number,
    stack: CursorFrame[],
    resume: CursorFrame[] | undefined,
    referencedFrom: string | undefined,
  ): AsyncGenerator<ManifestEntry, void, undefined> {
    let pending = resume?.[0]
    const opened = await open(key, depth, pending, depth === 0 && options.follow !== undefined, referencedFrom)
    try {
      for await (const line of opened.lines) {
        if (opened.tail) opened.tail.last = line
        if (pending && line.start < pending.start) {
          // Before the position (read from the start): only the root's refs matter, as visited.
          if (depth === 0 && line.entry.kind === 'manifest_ref') {
            rootRefs++
            if (resolveRefs) visited.add(line.entry.key)
          }
          continue
        }
        const frame: CursorFrame = {
          key,
          etag: opened.etag(),
          start: line.start,
          end: line.end,
          startCrc: line.startCrc,
          crc: line.crc,
          line: line.lineNumber,
        }
        if (pending) {
          const expected = pending
          pending = undefined
          yield* resumeAt(line, expected, [...stack, frame], resume as CursorFrame[], depth)
        } else yield* step(line.entry, key, depth, [...stack, frame])
        // `rootRefs` counts the root's refs before the line a position is in: a root ref is counted once done.
        if (depth === 0 && line.entry.kind === 'manifest_ref') rootRefs++
      }
      if (pending) {
        throw new CursorMismatchError(
          key,
          'rewritten',
          `it ends before line ${pending.line} (byte ${pending.start}) that the cursor recorded`,
        )
      }
    } finally {
      await opened.lines.return(undefined)
    }
  }

  /** The line a cursor's frame points at: checked, then gone down (a ref) or resumed (a shard's members) or passed (consumed). */
  async function* resumeAt(
    line: PositionedLine,
    expected: CursorFrame,
    here: CursorFrame[],
    resume: CursorFrame[],
    depth: number,
  ): AsyncGenerator<ManifestEntry, void, undefined> {
    const { entry } = line
    const key = expected.key
    if (line.start !== expected.start || line.end !== expected.end || line.crc !== expected.crc || line.startCrc !== expected.startCrc) {
      throw new CursorMismatchError(
        key,
        'rewritten',
        `line ${expected.line} (bytes ${expected.start}-${expected.end - 1}) is not what the cursor recorded: the manifest was rewritten, not appended to`,
      )
    }
    const rest = resume.slice(1)
    if (rest.length > 0) {
      // A ref on the way to the position: go down it, resuming there.
      if (entry.kind !== 'manifest_ref' || entry.key !== rest[0]?.key) {
        throw new CursorMismatchError(key, 'rewritten', `line ${expected.line} no longer leads to ${rest[0]?.key}`)
      }
      visited.add(entry.key)
      yield* walk(entry.key, depth + 1, here, rest, key)
      return
    }
    const member = after?.member
    if (member) {
      if (entry.kind !== 'shard') throw new CursorMismatchError(key, 'rewritten', `line ${expected.line} is no longer a shard`)
      setPosition(entry, { position: { ...position(here), member }, resumeAfter: member })
      yield entry
    }
    // Without a member, the item at the position was consumed whole.
  }

  /** One entry met in order: a ref gone down (or yielded, without `resolveRefs`), any other entry yielded. */
  async function* step(
    entry: ManifestEntry,
    key: string,
    depth: number,
    here: CursorFrame[],
  ): AsyncGenerator<ManifestEntry, void, undefined> {
    if (entry.kind === 'manifest_ref' && resolveRefs) {
      if (visited.has(entry.key)) return
      if (depth >= limits.maxRefDepth) {
        throw new LimitExceededError(`manifest_ref to ${entry.key} is nested too deep`, {
          key,
          limit: 'maxRefDepth',
          value: limits.maxRefDepth,
        })
      }
      if (visited.size >= limits.maxManifests) {
        throw new LimitExceededError(`manifest_ref to ${entry.key} is one manifest too many`, {
          key,
          limit: 'maxManifests',
          value: limits.maxManifests,
        })
      }
      visited.add(entry.key)
      if (depth + 1 >= 2) deep.push(entry.key)
      yield* walk(entry.key, depth + 1, here, undefined, key)
      return
    }
    setPosition(entry, { position: position(here) })
    yield entry
  }

  yield* walk(root, 0, [], after?.frames, undefined)
}
