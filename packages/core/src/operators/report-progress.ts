/**
 * `reportProgress(options)`: a stage that reports each object it passes on to `onProgress` (see
 * `format/progress.ts`): one more object, and its body's size in bytes when known (the server's
 * Content-Length, an archive member's header), at the moment the object is handed on. Items pass
 * unchanged. Without a callback it is not needed: `reportProgress` returns undefined then, for
 * `optional`-style wiring that costs nothing. A callback that throws ends the iteration with its
 * error, after the body of the object at hand is destroyed (its connection let go).
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandShards, fetchBodies, readManifest, reportProgress } from '@s3exchange/core'
 *
 * const report = reportProgress({ onProgress: (p) => console.log(`${p.loadedObjects} objects, ${p.loadedBytes} bytes`) })
 * for await (const { entry, body } of pipe(readManifest(ctx, 'ds/manifest.jsonl'), expandShards(ctx, { bodies: true }), fetchBodies(ctx), report!)) {
 *   await body.bytes()
 * }
 * ```
 */
import { type ManifestEntry, objectKeyOf } from '../format/entries.js'
import { type ProgressOptions, type ProgressTotals, progressCounter } from '../format/progress.js'

/** What `reportProgress` counts: an entry, and its body when it has one. */
export interface ProgressItem {
  entry: ManifestEntry
  body?: { readonly size?: number | undefined; destroy(): unknown } | undefined
}

/** The stage (see the module comment), or undefined without `onProgress`. */
export function reportProgress(
  options: ProgressOptions & ProgressTotals,
): (<T extends ProgressItem>(items: AsyncIterable<T>) => AsyncGenerator<T, void, undefined>) | undefined {
  const progress = progressCounter(options, options)
  if (progress === undefined) return undefined
  return async function* reportProgressStage<T extends ProgressItem>(items: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    for await (const item of items) {
      try {
        progress.addObjects(1, item.body?.size ?? 0, objectKeyOf(item.entry))
      } catch (error) {
        item.body?.destroy()
        throw error
      }
      yield item
    }
  }
}
