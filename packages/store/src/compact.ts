/**
 * Compacting a manifest, wired from core's `compactInto`: its entries (refs resolved unless told
 * otherwise) written to a new flat manifest, shards optionally replaced by their members, counted
 * as Python counts them (see `CompactReport`).
 *
 * @example
 * ```ts
 * const report = await store.compactManifest('ds/manifest.jsonl', 'ds/manifest-compact.jsonl', { expandShards: true })
 * console.log(report.totalEntries, report.expandedShards)
 * ```
 */
import { type CompactIntoOptions, type CompactReport, compactInto } from '@s3exchange/core'
import type { CallOptions, EntrySource, StoreContext } from './context.js'
import type { ResolveRefsOptions } from './options.js'

/** Options for {@link S3ExchangeStore.compactManifest}. */
export interface CompactOptions extends CallOptions, ResolveRefsOptions, CompactIntoOptions {}

/** Compacts `src` into `dst`; see the module comment. */
export async function compactManifest(
  store: StoreContext,
  src: EntrySource,
  dst: string,
  options: CompactOptions = {},
): Promise<CompactReport> {
  const entries = src.iterEntries({ resolveRefs: options.resolveRefs ?? true, signal: options.signal })
  return compactInto(store.context(options.signal), dst, options)(entries)
}
