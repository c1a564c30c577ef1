/**
 * Deleting, with fences around what is not yours. A fence is a key prefix taken as a folder (`a/b`
 * holds `a/b/…`; `''` holds the whole bucket): nothing outside it is touched. `checkDeleteKey` and
 * `checkDeletePrefix` refuse an empty key or prefix and one outside the fence
 * (`DeleteRefusedError`); `matchingKeys` keeps the keys a pattern matches; `deleteAll` deletes the
 * keys it is given, in DeleteObjects batches; `planDeletion` works out, from a manifest's entries,
 * what deleting it means (loose objects, archives, manifests, and what lies outside the fence),
 * with no I/O; `deletePlanned` carries a plan out, data first and manifests last.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { checkDeletePrefix, deleteAll, listKeys, matchingKeys } from '@s3exchange/core'
 *
 * const prefix = checkDeletePrefix('training/123/', 'training')   // what to list, or DeleteRefusedError
 * const deleted = await pipe(listKeys(ctx, prefix), matchingKeys(/\.wav$/), deleteAll(ctx))
 * ```
 */
import type { ManifestEntry } from '../format/entries.js'
import { DeleteRefusedError, PartialDeleteError } from '../format/errors.js'
import { isWithinFence } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { progressCounter } from '../format/progress.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { type DeleteKeysOptions, deleteKeys } from '../s3/delete-keys.js'

/** Refuses to delete an empty key, or one outside `fence`. */
export function checkDeleteKey(key: string, fence: string): void {
  if (key === '') throw new DeleteRefusedError('the key is empty', { key })
  if (!isWithinFence(key, fence)) throw new DeleteRefusedError(`it is outside ${JSON.stringify(fence)}`, { key, fence })
}

/**
 * Refuses an empty prefix (`''`, `'/'`: the whole bucket) and one outside `fence`; returns the
 * prefix to list (the fence itself is listed as a folder, `fence/`).
 */
export function checkDeletePrefix(prefix: string, fence: string): string {
  if (prefix.replace(/\/+/g, '') === '') throw new DeleteRefusedError('an empty prefix would delete the whole bucket', { key: prefix })
  const base = fence.replace(/\/+$/, '')
  if (base === '') return prefix
  if (prefix === base) return `${base}/`
  if (!prefix.startsWith(`${base}/`)) throw new DeleteRefusedError(`it is outside ${JSON.stringify(base)}`, { key: prefix, fence: base })
  return prefix
}

/** Keeps the keys that `pattern` matches anywhere (Python's `re.search`); every key without one. */
export function matchingKeys(pattern: string | RegExp | undefined) {
  // A copy, matched from the start of each key: a `g` or `y` RegExp must not carry lastIndex from one key to the next.
  const regex = pattern === undefined ? undefined : new RegExp(pattern)
  return async function* matchingKeysStage(keys: AsyncIterable<string> | Iterable<string>): AsyncGenerator<string, void, undefined> {
    for await (const key of keys) {
      if (regex) regex.lastIndex = 0
      if (!regex || regex.test(key)) yield key
    }
  }
}

/** Options for {@link deleteAll}. */
export interface DeleteAllOptions extends Pick<DeleteKeysOptions, 'concurrency' | 'onProgress'> {
  /** Delete nothing: report (or count) what would be deleted. */
  dryRun?: boolean
}

/**
 * The sink that deletes the keys it receives (in DeleteObjects batches) and resolves to how many
 * were deleted (with `dryRun`, how many would be). Failures throw `PartialDeleteError` after the
 * rest went through.
 */
export function deleteAll(ctx: S3Context, options: DeleteAllOptions = {}) {
  checkOptions('deleteAll', options)
  // A dry run sends nothing: it needs no client.
  if (!options.dryRun) checkContext('deleteAll', ctx)
  return async function deleteAllSink(keys: AsyncIterable<string> | Iterable<string>): Promise<number> {
    if (options.dryRun) {
      let count = 0
      for await (const _ of keys) count++
      return count
    }
    const { deleted, errors } = await deleteKeys(ctx, keys, { concurrency: options.concurrency, onProgress: options.onProgress })
    if (Object.keys(errors).length > 0) throw new PartialDeleteError(deleted.length, errors)
    return deleted.length
  }
}

/** What deleting a manifest means: the keys to delete, by kind, and those left alone. */
export interface DeletePlan {
  /** Loose objects (distinct keys), inside the fence. */
  objects: string[]
  /** Shard archives (distinct keys), inside the fence. */
  archives: string[]
  /** Manifests, inside the fence. */
  manifests: string[]
  /** Keys outside the fence, left alone. */
  outsideFence: string[]
}

/** Options for {@link planDeletion}. */
export interface PlanDeletionOptions {
  /** Only keys inside this prefix (as a folder) are deleted; `''` holds every key. */
  fence: string
  /**
   * The manifests to delete besides what they reference (the manifest itself, parts reached
   * through refs, …); called once the entries are read, when a traversal's visited set is complete.
   */
  manifests?: () => Iterable<string>
}

/**
 * Works out what deleting these entries (a manifest's, refs resolved) means, as Python counts it:
 * each loose object once, the archive of each shard, and the archive of a file entry that is an
 * archive member (`archive_key` + `member_path`: deleting the virtual key would delete nothing).
 */
export async function planDeletion(
  entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  options: PlanDeletionOptions,
): Promise<DeletePlan> {
  const objects = new Set<string>()
  const archives = new Set<string>()
  for await (const entry of entries) {
    if (entry.kind === 'shard') archives.add(entry.archive_key)
    else if (typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') archives.add(entry.archive_key)
    else objects.add(entry.key)
  }
  const outsideFence: string[] = []
  const inside = (keys: Iterable<string>) => {
    const kept: string[] = []
    for (const key of new Set(keys)) {
      if (isWithinFence(key, options.fence)) kept.push(key)
      else outsideFence.push(key)
    }
    return kept
  }
  const plan = { objects: inside(objects), archives: inside(archives), manifests: inside(options.manifests?.() ?? []) }
  return { ...plan, outsideFence }
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

/**
 * Carries out a plan: data first, manifests last, and only if all the data went: a failure leaves
 * the manifests in place to describe what is left (and to retry with), listed in `errors`.
 * Failures are reported, not thrown. With `dryRun`, reports the plan and deletes nothing.
 */
export async function deletePlanned(ctx: S3Context, plan: DeletePlan, options: DeleteAllOptions = {}): Promise<DeleteReport> {
  checkContext('deletePlanned', ctx)
  checkOptions('deletePlanned', options)
  const report: DeleteReport = {
    deletedObjectCount: 0,
    deletedArchiveCount: 0,
    deletedManifestCount: 0,
    errors: {},
    outsideFence: plan.outsideFence,
    dryRun: options.dryRun ?? false,
    keys: { objects: [], archives: [], manifests: [] },
  }
  if (report.dryRun) {
    report.keys = { objects: plan.objects, archives: plan.archives, manifests: plan.manifests }
  } else {
    const deleteOptions = { concurrency: options.concurrency }
    // Progress: objects, archives and manifests deleted, out of the plan's.
    const progress = progressCounter(options, { totalObjects: plan.objects.length + plan.archives.length + plan.manifests.length })
    const data = await deleteKeys(ctx, [...plan.objects, ...plan.archives], deleteOptions, progress)
    Object.assign(report.errors, data.errors)
    const gone = new Set(data.deleted)
    report.keys.objects = plan.objects.filter((key) => gone.has(key))
    report.keys.archives = plan.archives.filter((key) => gone.has(key))
    const failed = Object.keys(data.errors).length
    if (failed > 0) {
      for (const key of plan.manifests) report.errors[key] = `kept: ${failed} of the objects it references could not be deleted`
    } else {
      const meta = await deleteKeys(ctx, plan.manifests, deleteOptions, progress)
      Object.assign(report.errors, meta.errors)
      report.keys.manifests = meta.deleted
    }
  }
  report.deletedObjectCount = report.keys.objects.length
  report.deletedArchiveCount = report.keys.archives.length
  report.deletedManifestCount = report.keys.manifests.length
  return report
}
