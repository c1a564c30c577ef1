/**
 * Walks a manifest and every manifest its `manifest_ref`s reach, as the library resolves refs
 * (core's `walkRefs`: depth first, in file order, each manifest read once), yielding every entry,
 * refs included, with the manifest it came from and its depth (0 for the root's own entries), and
 * counting the manifests read and the deepest ref chain. `stat` and `verify` use it; `verify`
 * reports a ref to a missing manifest and goes on instead of stopping. The context's limits hold
 * as in the library: a ref chain deeper than `maxRefDepth` or more than `maxManifests` manifests is
 * `LimitExceededError`.
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
import {
  effectiveLimits,
  type ManifestEntry,
  readManifest,
  type S3Context,
  type WalkedEntry,
  type WalkRefsOptions,
  walkRefs,
} from 's3exchange'

export type { WalkedEntry }

/** Counted while walking. */
export interface WalkStats {
  /** Manifests read: the root, its parts, and every other manifest reached. */
  manifests: number
  /** The deepest ref chain: 0 when the root references nothing. */
  maxDepth: number
}

/** Options for {@link walkManifest}. */
export type WalkOptions = Pick<WalkRefsOptions, 'onMissingRef'>

/** Walks `root`; see the module comment. */
export function walkManifest(ctx: S3Context, root: string, stats: WalkStats, options: WalkOptions = {}): AsyncGenerator<WalkedEntry> {
  const { maxRefDepth, maxManifests } = effectiveLimits(ctx.limits)
  const counted = async function* (entries: AsyncIterable<ManifestEntry>, depth: number): AsyncGenerator<ManifestEntry> {
    let opened = false
    for await (const entry of entries) {
      if (!opened) count(depth)
      opened = true
      yield entry
    }
    // An empty manifest was read too.
    if (!opened) count(depth)
  }
  const count = (depth: number) => {
    stats.manifests++
    stats.maxDepth = Math.max(stats.maxDepth, depth)
  }
  const open = (key: string, referencedFrom: string | undefined, depth: number) =>
    counted(readManifest(ctx, key, referencedFrom === undefined ? {} : { referencedFrom }), depth)
  return walkRefs(open(root, undefined, 0), root, open, { maxRefDepth, maxManifests, onMissingRef: options.onMissingRef })
}
