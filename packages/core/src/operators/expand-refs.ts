/**
 * `expandRefs(ctx)`: inlines `manifest_ref` entries, recursively, depth first in file order, as
 * Python s3exchange does: each manifest key is read at most once per traversal (a visited set),
 * so diamonds and cycles are read once and a traversal always ends. One connection at a time,
 * however deep the refs: a manifest lets go of its connection while the manifests its ref names
 * are read (see `readManifest`). When the input comes from
 * `readManifest`, its key counts as visited. A ref to a missing manifest throws
 * `ManifestNotFoundError` naming both manifests.
 *
 * The traversal itself is `walkRefs`, which does no I/O of its own: it is given a way to open the
 * manifest a ref names, and yields every entry, refs included, with the manifest it came from and
 * its depth (`s3x stat` and `s3x verify` walk with it too).
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, readManifest } from '@s3exchange/core'
 *
 * const entries = pipe(readManifest(ctx, 'training/123/samples/manifest.jsonl'), expandRefs(ctx))
 * for await (const entry of entries) console.log(entry.kind) // 'file' or 'shard', never 'manifest_ref'
 * ```
 */
import { BatchedStream, batchesOf } from '../format/batches.js'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { DETACH, type Detachable } from '../format/entry-stream.js'
import { LimitExceededError, ManifestNotFoundError } from '../format/errors.js'
import { effectiveLimits, type ReadLimits } from '../format/limits.js'
import { checkOptions } from '../format/options.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { MANIFEST_KEY, readManifest } from './read-manifest.js'

/** Options for {@link walkRefs}. */
export interface WalkRefsOptions extends Pick<ReadLimits, 'maxRefDepth' | 'maxManifests'> {
  /**
   * Keys already read in this traversal; refs to them are not followed. Shared and updated, so one
   * set can span several calls. Default: a new set (plus the key of the input, when known).
   */
  visited?: Set<string>
  /** A ref to a missing manifest (`ManifestNotFoundError` before any of its entries): told here and skipped. Default: thrown. */
  onMissingRef?: (error: ManifestNotFoundError) => void
}

/** Options for {@link expandRefs}. */
export interface ExpandRefsOptions
  extends Pick<WalkRefsOptions, 'visited'>,
    Pick<ReadLimits, 'maxLineBytes' | 'maxRefDepth' | 'maxManifests'> {}

/** One entry met on a walk: the entry, the manifest whose line it is, and how deep that manifest is. */
export interface WalkedEntry {
  entry: ManifestEntry
  /** The manifest key (undefined for entries of an input whose key is not known). */
  manifest: string | undefined
  /** 0 for the input's entries, 1 for those of a manifest it references, … */
  depth: number
}

/** Opens the manifest a ref names: `referencedFrom` is the manifest holding the ref, `depth` the new manifest's. */
export type OpenManifest = (
  key: string,
  referencedFrom: string | undefined,
  depth: number,
) => AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>

/**
 * Walks `source` (the entries of the manifest `sourceKey`) and every manifest its refs reach,
 * depth first in file order, each manifest once; yields every entry, refs included, each ref just
 * before the entries it leads to. Deeper than `maxRefDepth`, or more manifests than
 * `maxManifests`, is `LimitExceededError` naming the manifest that holds the ref.
 */
export function walkRefs(
  source: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  sourceKey: string | undefined,
  open: OpenManifest,
  options: WalkRefsOptions = {},
): AsyncGenerator<WalkedEntry, void, undefined> {
  checkOptions('walkRefs', options)
  return walkRefsFrom(source, sourceKey, open, options)
}

async function* walkRefsFrom(
  source: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  sourceKey: string | undefined,
  open: OpenManifest,
  options: WalkRefsOptions,
): AsyncGenerator<WalkedEntry, void, undefined> {
  for await (const { entries, manifest, depth } of walkRefBatches(source, sourceKey, open, options)) {
    for (const entry of entries) yield { entry, manifest, depth }
  }
}

/** Consecutive entries of one manifest met on a walk (see {@link walkRefBatches}). */
interface WalkedBatch {
  entries: ManifestEntry[]
  manifest: string | undefined
  depth: number
}

/**
 * The walk of {@link walkRefs}, in arrays of consecutive entries of one manifest: an array ends
 * with each ref that is followed, and the manifest it leads to is opened only when the array
 * after it is asked for.
 */
async function* walkRefBatches(
  source: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  sourceKey: string | undefined,
  open: OpenManifest,
  options: WalkRefsOptions,
): AsyncGenerator<WalkedBatch, void, undefined> {
  const visited = options.visited ?? new Set<string>()
  if (sourceKey !== undefined) visited.add(sourceKey)
  const { maxRefDepth, maxManifests } = effectiveLimits(undefined, options)
  yield* walk(source, sourceKey, 0)

  async function* walk(
    entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
    key: string | undefined,
    depth: number,
  ): AsyncGenerator<WalkedBatch, void, undefined> {
    let read = false
    try {
      for await (const batch of batchesOf(entries)) {
        read = true
        let start = 0
        for (let i = 0; i < batch.length; i++) {
          const entry = batch[i] as ManifestEntry
          if (entry.kind !== 'manifest_ref' || visited.has(entry.key)) continue
          // The entries up to the ref, then (when asked for) those it leads to.
          yield { entries: start === 0 && i === batch.length - 1 ? batch : batch.slice(start, i + 1), manifest: key, depth }
          start = i + 1
          if (depth >= maxRefDepth) {
            throw new LimitExceededError(`manifest_ref to ${entry.key} is nested too deep`, {
              key: key ?? entry.key,
              limit: 'maxRefDepth',
              value: maxRefDepth,
            })
          }
          if (visited.size >= maxManifests) {
            throw new LimitExceededError(`manifest_ref to ${entry.key} is one manifest too many`, {
              key: key ?? entry.key,
              limit: 'maxManifests',
              value: maxManifests,
            })
          }
          visited.add(entry.key)
          // This manifest holds no connection while the one its ref names is read (see readManifest).
          await (entries as Partial<Detachable>)[DETACH]?.()
          yield* walk(open(entry.key, key, depth + 1), entry.key, depth + 1)
        }
        if (start < batch.length) yield { entries: start === 0 ? batch : batch.slice(start), manifest: key, depth }
      }
    } catch (error) {
      const missing = error instanceof ManifestNotFoundError && error.key === key && !read
      if (missing && depth > 0 && options.onMissingRef) {
        options.onMissingRef(error)
        return
      }
      throw error
    }
  }
}

/** Inlines `manifest_ref` entries; see the module comment. */
export function expandRefs(ctx: S3Context, options: ExpandRefsOptions = {}) {
  checkContext('expandRefs', ctx)
  checkOptions('expandRefs', options)
  return function expandRefsStage(entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>): BatchedStream<FileEntry | ShardEntry> {
    return new BatchedStream(() => expandedBatches(ctx, options, entries))
  }
}

async function* expandedBatches(
  ctx: S3Context,
  options: ExpandRefsOptions,
  entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
): AsyncGenerator<(FileEntry | ShardEntry)[], void, undefined> {
  const { maxLineBytes, maxRefDepth, maxManifests } = effectiveLimits(ctx.limits, options)
  const rootKey = (entries as { [MANIFEST_KEY]?: string })[MANIFEST_KEY]
  const open: OpenManifest = (key, referencedFrom) => readManifest(ctx, key, { maxLineBytes, referencedFrom })
  for await (const { entries: batch } of walkRefBatches(entries, rootKey, open, { visited: options.visited, maxRefDepth, maxManifests })) {
    yield withoutRefs(batch)
  }
}

/** The entries that are not refs (the same array when there is none). */
function withoutRefs(entries: ManifestEntry[]): (FileEntry | ShardEntry)[] {
  for (const entry of entries) {
    if (entry.kind === 'manifest_ref') return entries.filter((e): e is FileEntry | ShardEntry => e.kind !== 'manifest_ref')
  }
  return entries as (FileEntry | ShardEntry)[]
}
