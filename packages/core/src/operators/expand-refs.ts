/**
 * `expandRefs(ctx)`: inlines `manifest_ref` entries, recursively, depth first in file order, as
 * Python s3exchange does: each manifest key is read at most once per traversal (a visited set),
 * so diamonds and cycles are read once and a traversal always ends. When the input comes from
 * `readManifest`, its key counts as visited. A ref to a missing manifest throws
 * `ManifestNotFoundError` naming both manifests.
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
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { LimitExceededError } from '../format/errors.js'
import { effectiveLimits, type ReadLimits } from '../format/limits.js'
import type { S3Context } from '../s3/context.js'
import { MANIFEST_KEY, readManifest } from './read-manifest.js'

/** Options for {@link expandRefs}. */
export interface ExpandRefsOptions extends Pick<ReadLimits, 'maxLineBytes' | 'maxRefDepth' | 'maxManifests'> {
  /**
   * Keys already read in this traversal; refs to them are skipped. Shared and updated, so one
   * set can span several calls. Default: a new set (plus the key of a `readManifest` input).
   */
  visited?: Set<string>
}

/** Inlines `manifest_ref` entries; see the module comment. */
export function expandRefs(ctx: S3Context, options: ExpandRefsOptions = {}) {
  return async function* expandRefsStage(
    entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  ): AsyncGenerator<FileEntry | ShardEntry, void, undefined> {
    const visited = options.visited ?? new Set<string>()
    const rootKey = (entries as { [MANIFEST_KEY]?: string })[MANIFEST_KEY]
    if (rootKey !== undefined) visited.add(rootKey)
    const { maxLineBytes, maxRefDepth: maxDepth, maxManifests } = effectiveLimits(ctx.limits, options)
    yield* expand(entries, rootKey, 0)

    async function* expand(
      source: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
      sourceKey: string | undefined,
      depth: number,
    ): AsyncGenerator<FileEntry | ShardEntry, void, undefined> {
      for await (const entry of source) {
        if (entry.kind !== 'manifest_ref') {
          yield entry
          continue
        }
        if (visited.has(entry.key)) continue
        if (depth >= maxDepth) {
          throw new LimitExceededError(`manifest_ref to ${entry.key} is nested too deep`, {
            key: sourceKey ?? entry.key,
            limit: 'maxRefDepth',
            value: maxDepth,
          })
        }
        if (visited.size >= maxManifests) {
          throw new LimitExceededError(`manifest_ref to ${entry.key} is one manifest too many`, {
            key: sourceKey ?? entry.key,
            limit: 'maxManifests',
            value: maxManifests,
          })
        }
        visited.add(entry.key)
        yield* expand(readManifest(ctx, entry.key, { maxLineBytes, referencedFrom: sourceKey }), entry.key, depth + 1)
      }
    }
  }
}
