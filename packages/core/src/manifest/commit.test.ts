/**
 * Publishing to a root manifest (part keys are tested with the key rules, format/keys.test.ts): appendToManifest, creating
 * the root with If-None-Match, appending byte for byte with If-Match, refusing an invalid root,
 * concurrent appenders losing nothing through a proxy that enforces conditional writes, giving up
 * with ManifestConflictError, and the unconditional fallback on servers that answer 501.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { type ProxiedRequest, type S3Proxy, type S3ProxyOptions, startS3Proxy } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { type ManifestEntry, serializeEntry } from '../format/entries.js'
import { InvalidManifestError, ManifestConflictError, S3RequestError } from '../format/errors.js'
import type { S3Context } from '../s3/context.js'
import { appendToManifest, isConflict, MANIFEST_CONTENT_TYPE } from './commit.js'

const s3 = useTestS3()
const server = testServer()
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
})

async function proxied(options: Omit<S3ProxyOptions, 'target'>): Promise<{ proxy: S3Proxy; ctx: S3Context }> {
  const proxy = await startS3Proxy({ target: s3.s3, ...options })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint })
  clients.push(client)
  return { proxy, ctx: { client, bucket: s3.bucket } }
}

async function put(key: string, body: string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

async function getText(key: string): Promise<{ text: string; etag: string | undefined }> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return { text: await (response.Body as { transformToString(): Promise<string> }).transformToString(), etag: response.ETag }
}

function lines(entries: ManifestEntry[]): string {
  return entries.map((entry) => `${serializeEntry(entry)}\n`).join('')
}

const ref = (key: string): ManifestEntry => ({ kind: 'manifest_ref', key })

/** PUTs the proxy saw for `key` (not parts), with their condition headers. */
function putsOf(proxy: S3Proxy, key: string): ProxiedRequest[] {
  return proxy.requests.filter((request) => {
    const url = new URL(request.url, 'http://x')
    return request.method === 'PUT' && decodeURIComponent(url.pathname) === `/${s3.bucket}/${key}` && !url.searchParams.has('partNumber')
  })
}

describe('appendToManifest', () => {
  it("creates an absent root with If-None-Match: '*', as JSONL with the manifest content type", async () => {
    const { proxy, ctx } = await proxied({ enforceConditionalWrites: true })
    const root = s3.key('create/manifest.jsonl')
    const entries = [ref('create/manifests/part-1.jsonl'), { kind: 'file', key: 'ü.wav', id: null } as ManifestEntry]
    const result = await appendToManifest(ctx, root, entries)
    expect(result.attempts).toBe(1)
    const { text, etag } = await getText(root)
    expect(text).toBe(lines(entries))
    expect(result.etag).toBe(etag?.replace(/"/g, ''))
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: root }))
    expect(head.ContentType).toBe(MANIFEST_CONTENT_TYPE)
    const puts = putsOf(proxy, root)
    expect(puts).toHaveLength(1)
    expect(puts[0]?.headers['if-none-match']).toBe('*')
    expect(puts[0]?.headers['if-match']).toBeUndefined()
  })

  it('appends to an existing root with If-Match, keeping its bytes exactly', async () => {
    const { proxy, ctx } = await proxied({ enforceConditionalWrites: true })
    const root = s3.key('append/manifest.jsonl')
    // Written by someone else: spaces, raw non-ASCII, \r\n, a blank line, unknown fields.
    const existing = '{"kind": "file", "key": "a/ü.wav", "x": 1}\r\n\n{"kind":"manifest_ref","key":"old.jsonl"}\n'
    await put(root, existing)
    const before = await getText(root)
    await appendToManifest(ctx, root, [ref('p1.jsonl')])
    expect((await getText(root)).text).toBe(`${existing}${lines([ref('p1.jsonl')])}`)
    await appendToManifest(ctx, root, [ref('p2.jsonl'), ref('p3.jsonl')])
    expect((await getText(root)).text).toBe(`${existing}${lines([ref('p1.jsonl'), ref('p2.jsonl'), ref('p3.jsonl')])}`)
    const puts = putsOf(proxy, root)
    expect(puts).toHaveLength(2)
    expect(puts[0]?.headers['if-match']).toBe(before.etag)
  })

  it('adds the missing newline at the end of an existing root', async () => {
    const { ctx } = await proxied({ enforceConditionalWrites: true })
    const root = s3.key('append/no-newline.jsonl')
    await put(root, '{"kind":"file","key":"a"}')
    await appendToManifest(ctx, root, [ref('p.jsonl')])
    expect((await getText(root)).text).toBe(`{"kind":"file","key":"a"}\n${lines([ref('p.jsonl')])}`)
  })

  it.each([
    ['whitespace-only', ' \n\r\n\t\n'],
    ['empty', ''],
  ])('replaces a %s root', async (_, existing) => {
    const { ctx } = await proxied({ enforceConditionalWrites: true })
    const root = s3.key(`append/blank-${existing.length}.jsonl`)
    await put(root, existing)
    await appendToManifest(ctx, root, [ref('p.jsonl')])
    expect((await getText(root)).text).toBe(lines([ref('p.jsonl')]))
  })

  it('an invalid existing root is InvalidManifestError naming it and the line; the root is unchanged', async () => {
    const { proxy, ctx } = await proxied({ enforceConditionalWrites: true })
    const root = s3.key('invalid/manifest.jsonl')
    const existing = '{"kind":"file","key":"a"}\n{"kind":"file"\n'
    await put(root, existing)
    const before = await getText(root)
    const error = await appendToManifest(ctx, root, [ref('p.jsonl')]).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect(error).toMatchObject({ key: root, lineNumber: 2 })
    expect(await getText(root)).toEqual(before)
    expect(putsOf(proxy, root)).toEqual([])
  })

  it('8 concurrent appenders × 10 appends: all 80 refs are there, once each', async () => {
    const { proxy, ctx } = await proxied({ enforceConditionalWrites: true })
    const root = s3.key('concurrent/manifest.jsonl')
    const attempts: number[] = []
    await Promise.all(
      Array.from({ length: 8 }, async (_, writer) => {
        for (let i = 0; i < 10; i++) {
          const result = await appendToManifest(ctx, root, [ref(`w${writer}-${i}.jsonl`)], {
            maxAttempts: 200,
            baseDelayMs: 2,
            maxDelayMs: 50,
          })
          attempts.push(result.attempts)
        }
      }),
    )
    const { text } = await getText(root)
    const keys = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).key as string)
    expect(keys).toHaveLength(80)
    expect(new Set(keys).size).toBe(80)
    for (let writer = 0; writer < 8; writer++) {
      // Each writer's refs are in its own order.
      const own = keys.filter((key) => key.startsWith(`w${writer}-`))
      expect(own).toEqual(Array.from({ length: 10 }, (_, i) => `w${writer}-${i}.jsonl`))
    }
    expect(proxy.conflicts).toBeGreaterThan(0)
    expect(attempts.some((n) => n > 1)).toBe(true)
  })

  it.skipIf(!server.supports('conditional PutObject'))(
    'without the proxy, the server enforcing the conditions itself: 8 concurrent appenders × 10 keep all 80 refs (needs conditional PutObject)',
    async () => {
      const root = s3.key('concurrent/server.jsonl')
      await Promise.all(
        Array.from({ length: 8 }, async (_, writer) => {
          for (let i = 0; i < 10; i++) {
            await appendToManifest({ client: s3.client, bucket: s3.bucket }, root, [ref(`w${writer}-${i}.jsonl`)], {
              maxAttempts: 200,
              baseDelayMs: 2,
              maxDelayMs: 50,
            })
          }
        }),
      )
      const keys = (await getText(root)).text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).key as string)
      expect(keys).toHaveLength(80)
      expect(new Set(keys).size).toBe(80)
    },
  )

  it.skipIf(!server.supports('conditional writes ignored'))(
    'without enforcement (the check above can fail): concurrent appenders lose refs (needs conditional writes ignored)',
    async () => {
      const { proxy, ctx } = await proxied({})
      const root = s3.key('concurrent/unenforced.jsonl')
      await Promise.all(Array.from({ length: 8 }, (_, writer) => appendToManifest(ctx, root, [ref(`w${writer}.jsonl`)])))
      const { text } = await getText(root)
      expect(text.trim().split('\n').length).toBeLessThan(8)
      expect(proxy.conflicts).toBe(0)
    },
  )

  it('a root that always conflicts: ManifestConflictError after maxAttempts', async () => {
    const root = s3.key('conflict/manifest.jsonl')
    const { proxy, ctx } = await proxied({
      intercept: (request) =>
        putsOf({ requests: [request] } as S3Proxy, root).length ? { status: 412, code: 'PreconditionFailed' } : undefined,
    })
    const error = await appendToManifest(ctx, root, [ref('p.jsonl')], { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ManifestConflictError)
    expect(error).toMatchObject({ key: root, attempts: 4 })
    expect((error as Error).cause).toBeInstanceOf(S3RequestError)
    expect(((error as Error).cause as S3RequestError).statusCode).toBe(412)
    expect(putsOf(proxy, root)).toHaveLength(4)
  })

  it('409 Conflict is retried like 412', async () => {
    const root = s3.key('conflict/409.jsonl')
    let answered = 0
    const { ctx } = await proxied({
      intercept: (request) => {
        if (!putsOf({ requests: [request] } as S3Proxy, root).length || answered > 0) return undefined
        answered++
        return { status: 409, code: 'ConditionalRequestConflict' }
      },
    })
    const result = await appendToManifest(ctx, root, [ref('p.jsonl')], { baseDelayMs: 1 })
    expect(result.attempts).toBe(2)
    expect((await getText(root)).text).toBe(lines([ref('p.jsonl')]))
  })

  it('other errors are not retried', async () => {
    const root = s3.key('conflict/403.jsonl')
    const { proxy, ctx } = await proxied({
      intercept: (request) => (putsOf({ requests: [request] } as S3Proxy, root).length ? { status: 403, code: 'AccessDenied' } : undefined),
    })
    const error = await appendToManifest(ctx, root, [ref('p.jsonl')]).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 403, key: root })
    expect(putsOf(proxy, root)).toHaveLength(1)
  })

  it('a server answering 501 to conditional writes gets an unconditional PUT', async () => {
    const root = s3.key('fallback/manifest.jsonl')
    const { proxy, ctx } = await proxied({
      intercept: (request) =>
        putsOf({ requests: [request] } as S3Proxy, root).length && (request.headers['if-match'] || request.headers['if-none-match'])
          ? { status: 501, code: 'NotImplemented' }
          : undefined,
    })
    await appendToManifest(ctx, root, [ref('p1.jsonl')])
    await appendToManifest(ctx, root, [ref('p2.jsonl')])
    expect((await getText(root)).text).toBe(lines([ref('p1.jsonl'), ref('p2.jsonl')]))
    const puts = putsOf(proxy, root)
    const conditional = puts.filter((request) => request.headers['if-match'] || request.headers['if-none-match'])
    const unconditional = puts.filter((request) => !request.headers['if-match'] && !request.headers['if-none-match'])
    expect(conditional.length).toBeGreaterThanOrEqual(2)
    expect(unconditional).toHaveLength(2)
  })
})

describe('isConflict', () => {
  it('is true for S3RequestErrors with 412 or 409 only', () => {
    const withStatus = (status: number) => new S3RequestError('PutObject', 'k', { $metadata: { httpStatusCode: status } })
    expect(isConflict(withStatus(412))).toBe(true)
    expect(isConflict(withStatus(409))).toBe(true)
    expect(isConflict(withStatus(500))).toBe(false)
    expect(isConflict(new Error('412'))).toBe(false)
  })
})
