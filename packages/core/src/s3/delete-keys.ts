/**
 * Deleting keys in bulk: `DeleteObjects` batches of at most 1,000 keys, a few batches in flight
 * (p-limit), per-key failures collected rather than thrown. And the fence rule that destructive
 * calls use: a key is inside a fence `F` when `F` is empty, or the key is `F` or starts with `F/`.
 *
 * @example
 * ```ts
 * import { deleteKeys } from '@s3exchange/core'
 *
 * const { deleted, errors } = await deleteKeys(ctx, ['ds/a.wav', 'ds/b.wav'])
 * ```
 */
import { DeleteObjectsCommand } from '@aws-sdk/client-s3'
import pLimit from 'p-limit'
import { checkOptions } from '../format/options.js'
import { type ProgressCounter, type ProgressOptions, progressCounter } from '../format/progress.js'
import type { S3Context } from './context.js'
import { mapS3Error } from './requests.js'

/** Options for {@link deleteKeys}. */
export interface DeleteKeysOptions extends ProgressOptions {
  /** Keys per DeleteObjects request (at most 1,000). Default 1,000. */
  batchSize?: number
  /** DeleteObjects requests in flight at once. Default 4. */
  concurrency?: number
}

/** What {@link deleteKeys} did. */
export interface DeleteKeysResult {
  /** Keys the server reports as deleted (S3 counts a key that did not exist as deleted). */
  deleted: string[]
  /** Failures, keyed by S3 key. */
  errors: Record<string, string>
}

/** Deletes keys in DeleteObjects batches; see the module comment. Keys are deduplicated. */
export async function deleteKeys(
  ctx: S3Context,
  keys: Iterable<string> | AsyncIterable<string>,
  options: DeleteKeysOptions = {},
  progress: ProgressCounter | undefined = progressCounter(options),
): Promise<DeleteKeysResult> {
  checkOptions('deleteKeys', options)
  const batchSize = options.batchSize ?? 1000
  const limit = pLimit(options.concurrency ?? 4)
  const result: DeleteKeysResult = { deleted: [], errors: {} }
  const seen = new Set<string>()
  // Only the batches not yet settled: racing settled ones would never wait.
  const pending = new Set<Promise<void>>()
  let failure: { error: unknown } | undefined
  let batch: string[] = []
  const send = (keys: string[]) => {
    // Progress: the keys of each batch once the server answered (a throw stops the batches not yet sent).
    const task: Promise<void> = limit(async () => {
      const deleted = await deleteBatch(ctx, keys, result)
      progress?.addObjects(deleted, 0, keys[keys.length - 1])
    }).then(
      () => void pending.delete(task),
      (error: unknown) => {
        pending.delete(task)
        failure ??= { error }
      },
    )
    pending.add(task)
  }
  for await (const key of keys) {
    if (seen.has(key)) continue
    seen.add(key)
    batch.push(key)
    if (batch.length === batchSize) {
      send(batch)
      batch = []
      // Do not run far ahead of the requests: at most a few batches queued.
      if (limit.pendingCount > 4) await Promise.race(pending)
      if (failure) break
    }
  }
  if (batch.length > 0 && !failure) send(batch)
  await Promise.all(pending)
  if (failure) throw failure.error
  return result
}

/** Sends one batch; resolves to the number of its keys deleted. */
async function deleteBatch(ctx: S3Context, keys: string[], result: DeleteKeysResult): Promise<number> {
  try {
    const response = await ctx.client.send(
      new DeleteObjectsCommand({ Bucket: ctx.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false } }),
      { abortSignal: ctx.signal },
    )
    const failed = new Set<string>()
    for (const error of response.Errors ?? []) {
      if (error.Key === undefined) continue
      failed.add(error.Key)
      result.errors[error.Key] = `${error.Code ?? 'Error'}: ${error.Message ?? 'delete failed'}`
    }
    const reported = response.Deleted?.map((d) => d.Key).filter((k): k is string => k !== undefined)
    // Some servers list nothing in quiet-less answers: then every key not in error was deleted.
    const before = result.deleted.length
    for (const key of reported && reported.length > 0 ? reported : keys) if (!failed.has(key)) result.deleted.push(key)
    return result.deleted.length - before
  } catch (error) {
    const typed = mapS3Error('DeleteObjects', keys[0] ?? '', error, ctx.signal)
    if (ctx.signal?.aborted) throw typed
    const message = typed instanceof Error ? typed.message : String(typed)
    for (const key of keys) result.errors[key] = message
    return 0
  }
}
