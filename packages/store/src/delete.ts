/**
 * Deleting, wired from core's operators (`operators/delete.ts`), with the store's fence: a call's
 * `within`, else the store's `basePrefix` (the whole bucket when it has none; `within: ''` means
 * the whole bucket, on purpose). `deletePrefix('')` and `deletePrefix('/')` are refused; keys a
 * manifest names outside the fence are left alone and reported. `dryRun` reports without deleting.
 *
 * @example
 * ```ts
 * const store = new S3ExchangeStore({ client, bucket: 'shared', basePrefix: 'training' })
 * await store.deletePrefix('training/123/samples/', { regex: /\.wav$/ })     // → number deleted
 * const report = await store.deleteManifest('training/123/samples/manifest.jsonl', { dryRun: true })
 * console.log(report.deletedObjectCount, report.outsideFence)              // what would go, what is not ours
 * ```
 */
import {
  checkDeleteKey,
  checkDeletePrefix,
  type DeleteAllOptions,
  type DeleteReport,
  deleteAll,
  deleteObject,
  deletePlanned,
  expandRefs,
  listKeys,
  type ManifestEntry,
  matchingKeys,
  planDeletion,
  readManifest,
} from '@s3exchange/core'
import { pipe } from 'it-pipe'
import type { CallOptions, EntrySource, ReadOptions, StoreContext } from './context.js'

/** Options shared by the destructive calls. */
export interface FenceOptions extends CallOptions {
  /**
   * Only touch keys inside this prefix (as a folder: `a/b` holds `a/b/…`). Default: the store's
   * `basePrefix`, or the whole bucket when it has none. `''` means the whole bucket, on purpose.
   */
  within?: string
}

/** Options for {@link S3ExchangeStore.deletePrefix}. */
export interface DeletePrefixOptions extends FenceOptions, DeleteAllOptions {
  /** Only delete keys this pattern matches anywhere in the key (Python's `re.search`). */
  regex?: string | RegExp
}

/** Options for {@link S3ExchangeStore.deleteManifest}; `sseCustomerKey` is for reading SSE-C manifests. */
export interface DeleteManifestOptions extends FenceOptions, DeleteAllOptions, Pick<ReadOptions, 'sseCustomerKey'> {
  /** Also delete the manifest itself. Default true. */
  deleteManifests?: boolean
  /** Delete each key once (deletion is idempotent; the counts are of distinct keys either way). Default true. */
  dedupe?: boolean
  /**
   * Also delete every manifest reached through `manifest_ref`s (its parts, and other manifests it
   * references). Default false, as Python, which deletes only the manifest given.
   */
  referencedManifests?: boolean
}

/** Deletes one key, refusing an empty key or one outside the fence. */
export async function deleteKey(store: StoreContext, key: string, options: FenceOptions = {}): Promise<void> {
  checkDeleteKey(key, options.within ?? store.basePrefix)
  await deleteObject(store.context({ signal: options.signal }), key)
}

/** Deletes every key under `prefix` that `regex` matches; resolves to the number deleted (see `deleteAll`). */
export async function deletePrefix(store: StoreContext, prefix: string, options: DeletePrefixOptions = {}): Promise<number> {
  const listed = checkDeletePrefix(prefix, options.within ?? store.basePrefix)
  const ctx = store.context({ signal: options.signal })
  return pipe(listKeys(ctx, listed), matchingKeys(options.regex), deleteAll(ctx, options))
}

/**
 * Deletes what a manifest references (refs resolved) and the manifest itself, counted as Python
 * counts; see `planDeletion` and `deletePlanned`.
 */
export async function deleteManifest(
  store: StoreContext,
  manifest: EntrySource,
  options: DeleteManifestOptions = {},
): Promise<DeleteReport> {
  const ctx = store.context({ signal: options.signal, sseCustomerKey: options.sseCustomerKey })
  const visited = new Set<string>()
  const source: AsyncIterable<ManifestEntry> =
    manifest.key !== undefined
      ? readManifest(ctx, manifest.key)
      : manifest.iterEntries({ resolveRefs: false, signal: options.signal, sseCustomerKey: options.sseCustomerKey })
  const manifests = () => {
    if (!(options.deleteManifests ?? true)) return []
    return [...(manifest.key !== undefined ? [manifest.key] : []), ...(options.referencedManifests ? visited : [])]
  }
  const plan = await planDeletion(expandRefs(ctx, { visited })(source), { fence: options.within ?? store.basePrefix, manifests })
  return deletePlanned(ctx, plan, options)
}
