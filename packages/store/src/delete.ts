/**
 * Deleting, with fences around what is not yours. `deletePrefix('')` and `deletePrefix('/')` are
 * refused; when the store has a `basePrefix` (or the call passes `within`), nothing outside it is
 * touched: a prefix outside is refused, and keys a manifest names outside are left alone and
 * reported. `within: ''` means the whole bucket, on purpose. `dryRun` reports without deleting.
 *
 * @example
 * ```ts
 * const store = new S3ExchangeStore({ client, bucket: 'shared', basePrefix: 'training' })
 * await store.deletePrefix('training/123/samples/', { regex: /\.wav$/ })     // → number deleted
 * const report = await store.deleteManifest('training/123/samples/manifest.jsonl', { dryRun: true })
 * console.log(report.deletedObjectCount, report.outsideFence)              // what would go, what is not ours
 * ```
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3'
import {
  DeleteRefusedError,
  deleteKeys,
  expandRefs,
  isWithinFence,
  type ManifestEntry,
  mapS3Error,
  PartialDeleteError,
  readManifest,
} from '@s3exchange/core'
import { type CallOptions, Manifest, type ManifestRef } from './manifest.js'
import type { S3ExchangeStore } from './store.js'

/** Options shared by the destructive calls. */
export interface FenceOptions extends CallOptions {
  /**
   * Only touch keys inside this prefix (as a folder: `a/b` holds `a/b/…`). Default: the store's
   * `basePrefix`, or the whole bucket when it has none. `''` means the whole bucket, on purpose.
   */
  within?: string
}

/** Options for {@link S3ExchangeStore.deletePrefix}. */
export interface DeletePrefixOptions extends FenceOptions {
  /** Only delete keys this pattern matches anywhere in the key (Python's `re.search`). */
  regex?: string | RegExp
  /** Count what would be deleted; delete nothing. */
  dryRun?: boolean
  /** DeleteObjects requests in flight. Default 4. */
  concurrency?: number
}

/** Options for {@link S3ExchangeStore.deleteManifest}. */
export interface DeleteManifestOptions extends FenceOptions {
  /** Also delete the manifest itself. Default true. */
  deleteManifests?: boolean
  /** Delete each key once (deletion is idempotent; the counts are of distinct keys either way). Default true. */
  dedupe?: boolean
  /**
   * Also delete every manifest reached through `manifest_ref`s (its parts, and other manifests it
   * references). Default false, as Python, which deletes only the manifest given.
   */
  referencedManifests?: boolean
  /** Report what would be deleted; delete nothing. */
  dryRun?: boolean
  /** DeleteObjects requests in flight. Default 4. */
  concurrency?: number
}

/** What `deleteManifest` did (or, with `dryRun`, would do). */
export interface DeleteReport {
  /** Loose objects deleted (distinct keys). */
  deletedObjectCount: number
  /** Shard archives deleted. */
  deletedArchiveCount: number
  /** Manifests deleted. */
  deletedManifestCount: number
  /** Failures, keyed by S3 key: reported, not thrown. */
  errors: Record<string, string>
  /** Keys the manifest names outside the fence, left alone. */
  outsideFence: string[]
  /** True when nothing was deleted on purpose. */
  dryRun: boolean
  /** The keys deleted (or that would be), by kind. */
  keys: { objects: string[]; archives: string[]; manifests: string[] }
}

function fenceOf(store: S3ExchangeStore, options: FenceOptions): string {
  return options.within ?? store.basePrefix
}

/** Deletes one key, refusing an empty key or one outside the fence. */
export async function deleteKey(store: S3ExchangeStore, key: string, options: FenceOptions = {}): Promise<void> {
  if (key === '') throw new DeleteRefusedError('the key is empty', { key })
  const fence = fenceOf(store, options)
  if (!isWithinFence(key, fence)) throw new DeleteRefusedError(`it is outside ${JSON.stringify(fence)}`, { key, fence })
  try {
    await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }), { abortSignal: options.signal })
  } catch (error) {
    throw mapS3Error('DeleteObject', key, error, options.signal)
  }
}

/**
 * Deletes every key under `prefix` (that `regex` matches), listing page by page and deleting in
 * batches of 1,000. Resolves to the number deleted (or, with `dryRun`, that would be). Failures
 * throw `PartialDeleteError` after the rest went through.
 */
export async function deletePrefix(store: S3ExchangeStore, prefix: string, options: DeletePrefixOptions = {}): Promise<number> {
  if (prefix.replace(/\/+/g, '') === '') throw new DeleteRefusedError('an empty prefix would delete the whole bucket', { key: prefix })
  const fence = fenceOf(store, options).replace(/\/+$/, '')
  let listed = prefix
  if (fence !== '') {
    if (prefix === fence) listed = `${fence}/`
    else if (!prefix.startsWith(`${fence}/`)) throw new DeleteRefusedError(`it is outside ${JSON.stringify(fence)}`, { key: prefix, fence })
  }
  // A copy, matched from the start of each key: a `g` or `y` RegExp must not carry lastIndex from one key to the next.
  const pattern = options.regex === undefined ? undefined : new RegExp(options.regex)
  const matches = (key: string) => {
    if (!pattern) return true
    pattern.lastIndex = 0
    return pattern.test(key)
  }
  const matching = (async function* () {
    for await (const key of store.listKeys(listed, options)) if (matches(key)) yield key
  })()
  if (options.dryRun) {
    let count = 0
    for await (const _ of matching) count++
    return count
  }
  const { deleted, errors } = await deleteKeys(store.context(options.signal), matching, { concurrency: options.concurrency })
  if (Object.keys(errors).length > 0) throw new PartialDeleteError(deleted.length, errors)
  return deleted.length
}

/**
 * Deletes what a manifest references (refs resolved): loose objects, shard archives (also the
 * archive of a listed archive member), then the manifest itself, counted as Python counts. If any
 * referenced object could not be deleted, the manifests are kept (and listed in `errors`).
 */
export async function deleteManifest(store: S3ExchangeStore, ref: ManifestRef, options: DeleteManifestOptions = {}): Promise<DeleteReport> {
  const ctx = store.context(options.signal)
  const fence = fenceOf(store, options)
  const manifest = Manifest.fromRef(store, ref)
  const visited = new Set<string>()
  const source: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry> =
    manifest.key !== undefined ? readManifest(ctx, manifest.key) : manifest.iterEntries({ resolveRefs: false, signal: options.signal })
  const objects = new Set<string>()
  const archives = new Set<string>()
  for await (const entry of expandRefs(ctx, { visited })(source)) {
    if (entry.kind === 'shard') archives.add(entry.archive_key)
    else if (typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') archives.add(entry.archive_key)
    else objects.add(entry.key)
  }
  const manifests = new Set<string>()
  if (options.deleteManifests ?? true) {
    if (manifest.key !== undefined) manifests.add(manifest.key)
    if (options.referencedManifests) for (const key of visited) manifests.add(key)
  }

  const report: DeleteReport = {
    deletedObjectCount: 0,
    deletedArchiveCount: 0,
    deletedManifestCount: 0,
    errors: {},
    outsideFence: [],
    dryRun: options.dryRun ?? false,
    keys: { objects: [], archives: [], manifests: [] },
  }
  const inside = (keys: Set<string>) => {
    const kept: string[] = []
    for (const key of keys) {
      if (isWithinFence(key, fence)) kept.push(key)
      else report.outsideFence.push(key)
    }
    return kept
  }
  const plan = { objects: inside(objects), archives: inside(archives), manifests: inside(manifests) }
  if (report.dryRun) {
    report.keys = plan
    report.deletedObjectCount = plan.objects.length
    report.deletedArchiveCount = plan.archives.length
    report.deletedManifestCount = plan.manifests.length
    return report
  }
  // Data first, manifests last, and only if all the data went: a failure leaves the manifest in
  // place to describe what is left (and to retry with).
  const deleteOptions = { concurrency: options.concurrency }
  const data = await deleteKeys(ctx, [...plan.objects, ...plan.archives], deleteOptions)
  Object.assign(report.errors, data.errors)
  const gone = new Set(data.deleted)
  report.keys.objects = plan.objects.filter((key) => gone.has(key))
  report.keys.archives = plan.archives.filter((key) => gone.has(key))
  const failed = Object.keys(data.errors).length
  if (failed > 0) {
    for (const key of plan.manifests) report.errors[key] = `kept: ${failed} of the objects it references could not be deleted`
  } else {
    const meta = await deleteKeys(ctx, plan.manifests, deleteOptions)
    Object.assign(report.errors, meta.errors)
    report.keys.manifests = meta.deleted
  }
  report.deletedObjectCount = report.keys.objects.length
  report.deletedArchiveCount = report.keys.archives.length
  report.deletedManifestCount = report.keys.manifests.length
  return report
}
