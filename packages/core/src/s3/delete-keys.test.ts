/**
 * Deleting keys in bulk against a real (local) S3: DeleteObjects batches of at most 1,000 keys,
 * duplicates removed, a bounded number of batches in flight and queued, per-key failures and
 * failed batches collected rather than thrown (faults injected at the HTTP layer: a loopback
 * proxy, or SDK middleware that makes the server refuse some keys), cancellation. (The fence rule
 * is tested with the key rules, format/keys.test.ts.)
 */
import { type DeleteObjectsCommandInput, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { type S3Proxy, startS3Proxy } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import type { S3Context } from './context.js'
import { deleteKeys } from './delete-keys.js'

const s3 = useTestS3()
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
})

interface Observed {
  ctx: S3Context
  /** The keys of each DeleteObjects request, in the order the requests were sent. */
  batches: string[][]
  /** Most DeleteObjects requests in flight at once. */
  maxInFlight: () => number
}

/**
 * A fresh client whose DeleteObjects requests are observed through SDK middleware. `hold(n)` (n
 * counts requests from 1) may return a promise the n-th request waits for before it is sent.
 */
function observed(options: { endpoint?: string; maxAttempts?: number; hold?: (n: number) => Promise<void> | undefined } = {}): Observed {
  const client = s3.s3.createClient({
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
  })
  clients.push(client)
  const batches: string[][] = []
  let inFlight = 0
  let max = 0
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'DeleteObjectsCommand') return next(args)
      const input = args.input as { Delete: { Objects: { Key: string }[] } }
      batches.push(input.Delete.Objects.map((object) => object.Key))
      await options.hold?.(batches.length)
      inFlight++
      max = Math.max(max, inFlight)
      try {
        return await next(args)
      } finally {
        inFlight--
      }
    },
    { step: 'initialize', name: 'test-observe-deletes' },
  )
  return { ctx: { client, bucket: s3.bucket }, batches, maxInFlight: () => max }
}

async function putKeys(keys: string[], concurrency = 32): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const key = keys[next++] as string
        await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'x' }))
      }
    }),
  )
}

/** Every key under `prefix`, all pages. */
async function listAll(prefix: string): Promise<string[]> {
  const keys: string[] = []
  let token: string | undefined
  do {
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }))
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return keys
}

const numbered = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => s3.key(`${prefix}/${String(i).padStart(5, '0')}`))

describe('deleteKeys', () => {
  it('deletes more than 1,000 keys in several DeleteObjects requests of at most 1,000, duplicates removed', async () => {
    const keys = numbered('many', 2_345)
    // Some of them exist, in every batch (S3 counts a key that does not exist as deleted).
    const existing = keys.filter((_, i) => i % 50 === 0)
    await putKeys(existing)
    expect(await listAll(s3.key('many/'))).toHaveLength(47)
    const { ctx, batches } = observed()

    // Every key twice, the second copy after the first batch has gone out.
    const result = await deleteKeys(ctx, [...keys, ...keys])

    expect(batches.map((batch) => batch.length)).toEqual([1000, 1000, 345])
    expect(batches.flat().sort()).toEqual([...keys].sort())
    expect(result.errors).toEqual({})
    expect([...result.deleted].sort()).toEqual([...keys].sort())
    expect(await listAll(s3.key('many/'))).toEqual([])
  })

  it('takes an async iterable, and a smaller batchSize; a batchSize past 1,000 (S3 takes no more) is a ConfigurationError, nothing sent', async () => {
    const keys = numbered('async', 1_001)
    async function* lazily() {
      yield* keys
    }
    const small = observed()
    await deleteKeys(small.ctx, lazily(), { batchSize: 400 })
    expect(small.batches.map((batch) => batch.length)).toEqual([400, 400, 201])

    const refused = observed()
    for (const batchSize of [5_000, 0, Number.NaN]) {
      await expect(deleteKeys(refused.ctx, keys, { batchSize })).rejects.toMatchObject({ name: 'ConfigurationError', option: 'batchSize' })
    }
    expect(refused.batches).toEqual([])
  })

  it('no keys: no request', async () => {
    const { ctx, batches } = observed()
    expect(await deleteKeys(ctx, [])).toEqual({ deleted: [], errors: {} })
    expect(batches).toEqual([])
  })

  it('keeps at most `concurrency` requests in flight', async () => {
    const { ctx, batches, maxInFlight } = observed()
    await deleteKeys(ctx, numbered('concurrency', 4_000), { batchSize: 500, concurrency: 2 })
    expect(batches).toHaveLength(8)
    expect(maxInFlight()).toBeLessThanOrEqual(2)
  })

  it('does not read far ahead of the requests, even after some have completed', async () => {
    // The first request goes through; the others wait (until the source is exhausted, or a
    // moment passes: only a guard against a deadlock, nothing is measured in time).
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const guard = setTimeout(() => release(), 200)
    let completed = 0
    const { ctx } = observed({ hold: (n) => (n === 1 ? undefined : gate) })
    ctx.client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        if (context.commandName === 'DeleteObjectsCommand') completed++
        return result
      },
      { step: 'initialize', priority: 'low', name: 'test-count-completed' },
    )
    const total = 20_000
    let pulled = 0
    let mostAhead = 0
    function* source() {
      for (let i = 0; i < total; i++) {
        pulled++
        mostAhead = Math.max(mostAhead, pulled - completed * 1000)
        yield s3.key(`ahead/${i}`)
      }
      release()
    }
    try {
      const result = await deleteKeys(ctx, source())
      expect(result.deleted).toHaveLength(total)
    } finally {
      clearTimeout(guard)
    }
    // 4 in flight, at most 5 queued, one being filled: about 10 batches ahead, never the whole source.
    expect(mostAhead).toBeLessThanOrEqual(11_000)
  })

  it('collects the keys the server refuses, and deletes the rest', async () => {
    const keys = numbered('refused', 30)
    await putKeys(keys)
    const refused = new Set([keys[3], keys[17]] as string[])
    const { ctx } = observed()
    // The server refuses two keys (as S3 does with AccessDenied): they are taken out of the
    // request, so they stay, and reported in the response's Errors.
    ctx.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'DeleteObjectsCommand') return next(args)
        const input = args.input as DeleteObjectsCommandInput
        const kept = (input.Delete?.Objects ?? []).filter((object) => !refused.has(object.Key ?? ''))
        const result = await next({ ...args, input: { ...input, Delete: { ...input.Delete, Objects: kept } } })
        const output = result.output as { Errors?: { Key: string; Code: string; Message: string }[] }
        output.Errors = [...(output.Errors ?? []), ...[...refused].map((Key) => ({ Key, Code: 'AccessDenied', Message: 'Access Denied' }))]
        return result
      },
      { step: 'initialize', priority: 'low', name: 'test-refuse-keys' },
    )
    const result = await deleteKeys(ctx, keys)
    expect(result.errors).toEqual(Object.fromEntries([...refused].map((key) => [key, 'AccessDenied: Access Denied'])))
    expect(result.deleted.sort()).toEqual(keys.filter((key) => !refused.has(key)).sort())
    expect((await listAll(s3.key('refused/'))).sort()).toEqual([...refused].sort())
  })

  it('a failed DeleteObjects request marks each of its keys as failed; the other batches go through', async () => {
    const keys = numbered('batch-500', 2_500)
    const existing = keys.filter((_, i) => i % 100 === 0)
    await putKeys(existing)
    let deleteRequests = 0
    const proxy = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) => {
        if (request.method !== 'POST' || !new URL(request.url, 'http://x').searchParams.has('delete')) return undefined
        deleteRequests++
        return deleteRequests === 2 ? { status: 500, code: 'InternalError' } : undefined
      },
    })
    proxies.push(proxy)
    // One attempt, one request at a time: the second request is the second batch.
    const { ctx, batches } = observed({ endpoint: proxy.endpoint, maxAttempts: 1 })
    const result = await deleteKeys(ctx, keys, { concurrency: 1 })

    expect(batches.map((batch) => batch.length)).toEqual([1000, 1000, 500])
    const failed = keys.slice(1000, 2000)
    expect(Object.keys(result.errors).sort()).toEqual(failed)
    expect(result.errors[failed[0] as string]).toMatch(/500/)
    expect(result.deleted.sort()).toEqual([...keys.slice(0, 1000), ...keys.slice(2000)].sort())
    expect((await listAll(s3.key('batch-500/'))).sort()).toEqual(existing.filter((key) => failed.includes(key)))
  })

  it('an aborted signal rejects with its reason', async () => {
    const controller = new AbortController()
    controller.abort()
    const { ctx } = observed()
    const error = await deleteKeys({ ...ctx, signal: controller.signal }, numbered('aborted', 10)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((error as Error | undefined)?.name).toBe('AbortError')
  })
})
