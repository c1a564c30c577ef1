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
import { type CallOptions, type EntrySource, type StoreContext, writeContext } from './context.js'
import type { ResolveRefsOptions } from './options.js'

/**
 * Options for {@link S3ExchangeStore.compactManifest}: the write options (from `CompactIntoOptions`)
 * apply to the compacted manifest; its `sseCustomerKey`, if given, also to reading the source.
 */
export interface CompactOptions extends CallOptions, ResolveRefsOptions, CompactIntoOptions {}

/** Compacts `src` into `dst`; see the module comment. */
export async function compactManifest(
  store: StoreContext,
  src: EntrySource,
  dst: string,
  options: CompactOptions = {},
): Promise<CompactReport> {
  // Checked before the source is read: a bad write option fails here.
  const ctx = writeContext(store, options)
  const entries = src.iterEntries({
    resolveRefs: options.resolveRefs ?? true,
    signal: options.signal,
    sseCustomerKey: options.sseCustomerKey,
  })
  return compactInto(ctx, dst, options)(entries)
}
