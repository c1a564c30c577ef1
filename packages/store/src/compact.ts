/**
 * Compacting a manifest: its entries (refs resolved, shards optionally replaced by their members)
 * written to a new flat manifest, streamed (a multipart upload when large), and counted as Python
 * counts them: `totalEntries` is every entry read, `resolvedRefs` the refs read and dropped when
 * refs are not resolved (resolved refs are inlined and not counted), `expandedShards` the member
 * entries written for expanded shards, `removedEntries` always 0.
 *
 * @example
 * ```ts
 * const report = await store.compactManifest('ds/manifest.jsonl', 'ds/manifest-compact.jsonl', { expandShards: true })
 * console.log(report.totalEntries, report.expandedShards)
 * ```
 */
import { listedMemberEntry, type ManifestEntry, readInternalManifest, writeManifestObject } from '@s3exchange/core'
import { type CallOptions, Manifest, type ManifestRef } from './manifest.js'
import type { S3ExchangeStore } from './store.js'

/** Options for {@link S3ExchangeStore.compactManifest}. */
export interface CompactOptions extends CallOptions {
  /** Inline refs. Default true. When false, refs are dropped (and counted in `resolvedRefs`), as Python does. */
  resolveRefs?: boolean
  /** Replace each shard entry by its internal manifest's entries (with `archive_key`). Default false. */
  expandShards?: boolean
}

/** What a compaction did, as Python reports it. */
export interface CompactReport {
  totalEntries: number
  removedEntries: number
  resolvedRefs: number
  expandedShards: number
}

/** Compacts `src` into `dst`; see the module comment. */
export async function compactManifest(
  store: S3ExchangeStore,
  src: ManifestRef,
  dst: string,
  options: CompactOptions = {},
): Promise<CompactReport> {
  const ctx = store.context(options.signal)
  const report: CompactReport = { totalEntries: 0, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 }
  const entries = Manifest.fromRef(store, src).iterEntries({ resolveRefs: options.resolveRefs ?? true, signal: options.signal })
  async function* compacted(): AsyncGenerator<ManifestEntry> {
    for await (const entry of entries) {
      report.totalEntries++
      if (entry.kind === 'manifest_ref') {
        report.resolvedRefs++
        continue
      }
      if (entry.kind === 'shard' && options.expandShards) {
        for (const member of await readInternalManifest(ctx, entry)) {
          report.expandedShards++
          yield listedMemberEntry(member, entry.archive_key)
        }
        continue
      }
      yield entry
    }
  }
  await writeManifestObject(ctx, dst, compacted())
  return report
}
