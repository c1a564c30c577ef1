/**
 * `compactInto(ctx, dst, opts)`: the sink that writes the entries it receives to one flat
 * manifest at `dst` (streamed, a multipart upload when large; see `writeManifestObject`), dropping
 * `manifest_ref`s and, with `expandShards`, replacing each shard by its internal manifest's
 * entries (with `archive_key`), counted as Python counts them: `totalEntries` is every entry read,
 * `resolvedRefs` the refs dropped (refs resolved before this stage are inlined and not counted),
 * `expandedShards` the member entries written for expanded shards, `removedEntries` always 0.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { compactInto, expandRefs, readManifest } from '@s3exchange/core'
 *
 * const report = await pipe(readManifest(ctx, 'ds/manifest.jsonl'), expandRefs(ctx), compactInto(ctx, 'ds/compact.jsonl'))
 * console.log(report.totalEntries)
 * ```
 */
import { listedMemberEntry } from '../archive/internal-manifest.js'
import { readInternalManifest } from '../archive/scan-archive.js'
import type { ManifestEntry } from '../format/entries.js'
import { type ProgressOptions, progressCounter } from '../format/progress.js'
import { writeAll } from '../format/writer.js'
import { ManifestObjectWriter } from '../manifest/manifest-object.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { type WriteOptions, withWriteOptions } from '../s3/write-options.js'

/** Options for {@link compactInto}; the write options apply to the compacted manifest. */
export interface CompactIntoOptions extends WriteOptions, ProgressOptions {
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

/** Writes the entries it receives as one flat manifest at `dst`; see the module comment. */
export function compactInto(ctx: S3Context, dst: string, options: CompactIntoOptions = {}) {
  const output = withWriteOptions(ctx, options)
  return async function compactIntoSink(entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>): Promise<CompactReport> {
    const report: CompactReport = { totalEntries: 0, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 }
    // Progress: entries written to the compacted manifest (objects), as they are; bytes are the manifest's as its parts go up.
    const progress = progressCounter(options)
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
            progress?.addObjects(1, 0, dst)
          }
          continue
        }
        yield entry
        progress?.addObjects(1, 0, dst)
      }
    }
    checkContext('compactInto', ctx)
    await writeAll(new ManifestObjectWriter(output, dst, {}, progress), compacted())
    return report
  }
}
