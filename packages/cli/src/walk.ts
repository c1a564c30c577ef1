/**
 * Walks a manifest and every manifest its `manifest_ref`s reach, as the library resolves refs
 * (depth first, in file order, each manifest read once), yielding every entry, refs included,
 * with the manifest it came from and its depth (0 for the root's own entries), and counting the
 * manifests read and the deepest ref chain. `stat` and `verify` use it; `verify` reports a ref to
 * a missing manifest and goes on instead of stopping. The context's limits hold as in the library:
 * a ref chain deeper than `maxRefDepth` or more than `maxManifests` manifests is `LimitExceededError`.
 *
 * @example
 * ```ts
 * import { walkManifest } from '@s3exchange/cli'
 *
 * const stats = { manifests: 0, maxDepth: 0 }
 * for await (const { entry, depth } of walkManifest(store.context(), 'ds/manifest.jsonl', stats)) console.log(depth, entry.kind)
 * console.log(stats.manifests, 'manifests read')
 * ```
 */
import { effectiveLimits, LimitExceededError, type ManifestEntry, ManifestNotFoundError, readManifest, type S3Context } from 's3exchange'

/** One entry met on the walk. */
export interface WalkedEntry {
  entry: ManifestEntry
  /** The manifest whose line it is. */
  manifest: string
  /** 0 for the root's entries, 1 for those of a manifest the root references, ... */
  depth: number
}

/** Counted while walking. */
export interface WalkStats {
  /** Manifests read: the root, its parts, and every other manifest reached. */
  manifests: number
  /** The deepest ref chain: 0 when the root references nothing. */
  maxDepth: number
}

/** Options for {@link walkManifest}. */
export interface WalkOptions {
  /** A ref to a missing manifest: told here and skipped. Default: thrown. */
  onMissingRef?: (error: ManifestNotFoundError) => void
}

/** Walks `root`; see the module comment. */
export async function* walkManifest(
  ctx: S3Context,
  root: string,
  stats: WalkStats,
  options: WalkOptions = {},
): AsyncGenerator<WalkedEntry> {
  const visited = new Set<string>([root])
  const limits = effectiveLimits(ctx.limits)
  yield* walk(root, 0, undefined)

  async function* walk(key: string, depth: number, referencedFrom: string | undefined): AsyncGenerator<WalkedEntry> {
    const entries = readManifest(ctx, key, referencedFrom === undefined ? {} : { referencedFrom })
    let opened = false
    try {
      for await (const entry of entries) {
        if (!opened) countManifest(depth)
        opened = true
        yield { entry, manifest: key, depth }
        if (entry.kind !== 'manifest_ref' || visited.has(entry.key)) continue
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
        yield* walk(entry.key, depth + 1, key)
      }
    } catch (error) {
      const missing = error instanceof ManifestNotFoundError && error.key === key && !opened
      if (missing && referencedFrom !== undefined && options.onMissingRef) {
        options.onMissingRef(error)
        return
      }
      throw error
    }
    // An empty manifest was read too.
    if (!opened) countManifest(depth)
  }

  function countManifest(depth: number): void {
    stats.manifests++
    stats.maxDepth = Math.max(stats.maxDepth, depth)
  }
}
