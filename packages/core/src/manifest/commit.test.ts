/**
 * Publishing to a root manifest (part keys are tested with the key rules, format/keys.test.ts): appendToManifest, creating
 * the root with If-None-Match, appending byte for byte with If-Match (in the form the server
 * honours), refusing an invalid root, concurrent appenders losing nothing through a proxy that
 * enforces conditional writes and against the server itself, giving up with ManifestConflictError,
 * 409 sent again, a root deleted meanwhile (404 or 412) as a lost race, slow-downs retried apart,
 * the unconditional fallback on servers that answer 501, and roots larger than a part committed in
 * one conditional PUT (or refused where a multipart commit would be unguarded).
 */
import { createHash } from 'node:crypto'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { type ProxiedRequest, rejection, type S3Proxy, type S3ProxyOptions, startS3Proxy } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { type ManifestEntry, serializeEntry } from '../format/entries.js'
import { ConditionalWriteUnsupportedError, InvalidManifestError, ManifestConflictError, S3RequestError } from '../format/errors.js'
import { CONFLICT_RETRIES } from '../s3/conditional-write.js'
import type { S3Context } from '../s3/context.js'
import { rememberServerCapabilities } from '../s3/server-knowledge.js'
import { appendToManifest, isConflict, isSlowDown, MANIFEST_CONTENT_TYPE } from './commit.js'

const s3 = useTestS3()
const server = testServer()
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
})

async function proxied(options: Omit<S3ProxyOptions, 'target'>, config: S3ClientConfig = {}): Promise<{ proxy: S3Proxy; ctx: S3Context }> {
  const proxy = await startS3Proxy({ target: s3.s3, ...options })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint, ...config })
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
    // The first If-Match is the quoted ETag; a server that honours only the bare one (Ceph RGW 16)
    // refuses it although it matches, and gets the bare one, then the bare one only.
    const bareOnly = server.capabilities.conditionalPut === 'bare'
    const etag = before.etag?.replace(/"/g, '') as string
    const puts = putsOf(proxy, root).map((request) => request.headers['if-match'])
    expect(puts.slice(0, bareOnly ? 2 : 1)).toEqual(bareOnly ? [`"${etag}"`, etag] : [`"${etag}"`])
    expect(puts).toHaveLength(bareOnly ? 3 : 2)
    expect(puts.at(-1)).toMatch(bareOnly ? /^[0-9a-f]{32}$/ : /^"[0-9a-f]{32}"$/)
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

  it('409 ConditionalRequestConflict on the root PUT is sent again within the attempt, as AWS documents', async () => {
    const root = s3.key('conflict/409.jsonl')
    let answered = 0
    const { proxy, ctx } = await proxied({
      intercept: (request) => {
        if (!putsOf({ requests: [request] } as S3Proxy, root).length || answered > 0) return undefined
        answered++
        return { status: 409, code: 'ConditionalRequestConflict' }
      },
    })
    const result = await appendToManifest(ctx, root, [ref('p.jsonl')], { baseDelayMs: 1 })
    expect(result.attempts).toBe(1)
    expect(putsOf(proxy, root)).toHaveLength(2)
    expect((await getText(root)).text).toBe(lines([ref('p.jsonl')]))
  })

  it('409 on every resend of an attempt counts as a lost race: the root is read again and the append retried', async () => {
    const root = s3.key('conflict/409-many.jsonl')
    let answered = 0
    const { proxy, ctx } = await proxied({
      intercept: (request) => {
        if (!putsOf({ requests: [request] } as S3Proxy, root).length || answered > CONFLICT_RETRIES) return undefined
        answered++
        return { status: 409, code: 'ConditionalRequestConflict' }
      },
    })
    const result = await appendToManifest(ctx, root, [ref('p.jsonl')], { baseDelayMs: 1 })
    expect(result.attempts).toBe(2)
    expect(putsOf(proxy, root)).toHaveLength(CONFLICT_RETRIES + 2)
    expect((await getText(root)).text).toBe(lines([ref('p.jsonl')]))
  })

  it.each([
    [404, 'NoSuchKey', 'AWS S3'],
    [412, 'PreconditionFailed', 'Ceph RGW'],
  ])(
    'the root deleted meanwhile (If-Match answered %i %s, as %s does): a lost race, the root read again and created',
    async (status, code) => {
      const root = s3.key(`deleted/${status}.jsonl`)
      await put(root, lines([ref('old.jsonl')]))
      let deleted = false
      const { proxy, ctx } = await proxied({
        intercept: async (request) => {
          if (deleted || !putsOf({ requests: [request] } as S3Proxy, root).length) return undefined
          deleted = true
          await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: root }))
          return { status, code }
        },
      })
      const result = await appendToManifest(ctx, root, [ref('p.jsonl')], { baseDelayMs: 1 })
      expect(result.attempts).toBe(2)
      const puts = putsOf(proxy, root)
      expect(puts).toHaveLength(2)
      expect(puts[0]?.headers['if-match']).toBeDefined()
      expect(puts[1]?.headers['if-none-match']).toBe('*')
      expect((await getText(root)).text).toBe(lines([ref('p.jsonl')]))
    },
  )

  it.each([
    [503, 'SlowDown'],
    [429, 'TooManyRequests'],
  ])('%i %s on the root PUT (the SDK’s retries spent) is retried with backoff, not counted as a lost race', async (status, code) => {
    const root = s3.key(`slow/${status}.jsonl`)
    // Two slow-downs and two lost races (412 to If-None-Match: *), then the write goes through.
    const answers = [
      { status, code },
      { status: 412, code: 'PreconditionFailed' },
      { status, code },
      { status: 412, code: 'PreconditionFailed' },
    ]
    const { proxy, ctx } = await proxied(
      { intercept: (request) => (putsOf({ requests: [request] } as S3Proxy, root).length ? answers.shift() : undefined) },
      { maxAttempts: 1 },
    )
    // maxAttempts: 3 allows the two lost races; were the slow-downs counted with them, this would be ManifestConflictError.
    const result = await appendToManifest(ctx, root, [ref('p.jsonl')], { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 })
    expect(result.attempts).toBe(5)
    expect(putsOf(proxy, root)).toHaveLength(5)
    expect((await getText(root)).text).toBe(lines([ref('p.jsonl')]))
  })

  it('a server that keeps asking to slow down: its error after maxAttempts, not ManifestConflictError', async () => {
    const root = s3.key('slow/always.jsonl')
    const { proxy, ctx } = await proxied(
      { intercept: (request) => (putsOf({ requests: [request] } as S3Proxy, root).length ? { status: 503, code: 'SlowDown' } : undefined) },
      { maxAttempts: 1 },
    )
    const error = await rejection(appendToManifest(ctx, root, [ref('p.jsonl')], { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 }))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 503, key: root })
    expect(putsOf(proxy, root)).toHaveLength(3)
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

describe('a root larger than a part (8 MiB)', () => {
  /** A root of about 9 MiB: larger than the default part, within every single-PUT limit measured (fauxqs: 11 MiB). */
  const bigRoot = lines(
    Array.from({ length: 9 * 1024 }, (_, i) => ref(`big/manifests/part-${String(i).padStart(6, '0')}-${'x'.repeat(980)}.jsonl`)),
  )
  const isMultipart = (request: ProxiedRequest) => request.method === 'POST' && new URL(request.url, 'http://x').search.includes('uploads')

  /** Tells the client the If-Match form the test server honours, so that request counts do not depend on learning it. */
  function knowingTheForm(ctx: S3Context): S3Context {
    rememberServerCapabilities(ctx.client, { conditionalPut: server.capabilities.conditionalPut })
    return ctx
  }

  it('is committed with one conditional PutObject, not a multipart upload', async () => {
    expect(bigRoot.length).toBeGreaterThan(8 * 1024 * 1024)
    const root = s3.key('big/one-put.jsonl')
    await put(root, bigRoot)
    const { proxy, ctx } = await proxied({})
    const result = await appendToManifest(knowingTheForm(ctx), root, [ref('p.jsonl')])
    const body = `${bigRoot}${lines([ref('p.jsonl')])}`
    const puts = putsOf(proxy, root)
    expect(puts).toHaveLength(1)
    expect(puts[0]?.headers['if-match']).toBeDefined()
    expect(proxy.requests.filter(isMultipart)).toEqual([])
    expect(result.etag).toBe(createHash('md5').update(body).digest('hex')) // a single PUT's ETag: no "-N"
    expect((await getText(root)).text).toBe(body)
  })

  it.skipIf(!server.supports('conditional PutObject'))(
    'the server keeps the condition at that size: an append made meanwhile by another writer is kept (needs conditional PutObject)',
    async () => {
      const root = s3.key('big/raced.jsonl')
      await put(root, bigRoot)
      let raced = false
      const { proxy, ctx } = await proxied({
        intercept: async (request) => {
          if (raced || !putsOf({ requests: [request] } as S3Proxy, root).length) return undefined
          raced = true
          // Another writer appends before this PUT reaches the server, which must refuse it (412).
          await appendToManifest(knowingTheForm({ client: s3.client, bucket: s3.bucket }), root, [ref('other.jsonl')])
          return undefined
        },
      })
      const result = await appendToManifest(knowingTheForm(ctx), root, [ref('mine.jsonl')], { baseDelayMs: 1 })
      expect(result.attempts).toBe(2)
      expect(putsOf(proxy, root)).toHaveLength(2)
      expect((await getText(root)).text).toBe(`${bigRoot}${lines([ref('other.jsonl'), ref('mine.jsonl')])}`)
    },
  )

  it.each([
    [413, 'EntityTooLarge', 'fauxqs above 11 MiB'],
    [400, 'EntityTooLarge', 'AWS S3 above 5 GiB'],
  ])(
    'too large for one PUT (%i %s, as %s) on a server not known to honour conditional completions: ConditionalWriteUnsupportedError, nothing written',
    async (status, code) => {
      const root = s3.key(`big/refused-${status}.jsonl`)
      await put(root, bigRoot)
      const before = await getText(root)
      const { proxy, ctx } = await proxied({
        intercept: (request) => (putsOf({ requests: [request] } as S3Proxy, root).length ? { status, code } : undefined),
      })
      const error = await rejection(appendToManifest(ctx, root, [ref('p.jsonl')]))
      expect(error).toBeInstanceOf(ConditionalWriteUnsupportedError)
      expect(error).toMatchObject({ key: root, capability: 'conditionalComplete', known: false })
      expect((error as Error).message).toContain('probeServerOnce(ctx)')
      expect(putsOf(proxy, root)).toHaveLength(1)
      expect(proxy.requests.filter(isMultipart)).toEqual([])
      expect(await getText(root)).toEqual(before)
      // The refusal is remembered: the next append of that size sends nothing.
      expect(await rejection(appendToManifest(ctx, root, [ref('p.jsonl')]))).toBeInstanceOf(ConditionalWriteUnsupportedError)
      expect(putsOf(proxy, root)).toHaveLength(1)
    },
  )

  it('too large for one PUT where the server is known to ignore conditions on completions (as probed): refused, known', async () => {
    const root = s3.key('big/refused-known.jsonl')
    await put(root, bigRoot)
    const { proxy, ctx } = await proxied({})
    rememberServerCapabilities(ctx.client, { conditionalComplete: false, maxSinglePutRefused: 8 * 1024 * 1024 })
    const error = await rejection(appendToManifest(ctx, root, [ref('p.jsonl')]))
    expect(error).toMatchObject({ capability: 'conditionalComplete', known: true })
    expect((error as Error).message).toContain('ignores If-Match and If-None-Match on CompleteMultipartUpload')
    expect(putsOf(proxy, root)).toEqual([])
    expect(proxy.requests.filter(isMultipart)).toEqual([])
  })

  it('too large for one PUT where the server honours conditions on completions (the enforcing proxy, told so): a conditional multipart commit', async () => {
    const root = s3.key('big/multipart.jsonl')
    await put(root, bigRoot)
    const { proxy, ctx } = await proxied({ enforceConditionalWrites: true })
    rememberServerCapabilities(ctx.client, { conditionalComplete: true, maxSinglePutRefused: 8 * 1024 * 1024 })
    await appendToManifest(ctx, root, [ref('p.jsonl')])
    expect((await getText(root)).text).toBe(`${bigRoot}${lines([ref('p.jsonl')])}`)
    const completions = proxy.requests.filter(
      (request) => request.method === 'POST' && new URL(request.url, 'http://x').searchParams.has('uploadId'),
    )
    expect(completions).toHaveLength(1)
    expect(completions[0]?.headers['if-match']).toBeDefined()
  })
})

describe('isConflict, isSlowDown', () => {
  const withStatus = (status: number, name?: string) =>
    new S3RequestError('PutObject', 'k', { name, $metadata: { httpStatusCode: status } })

  it('a lost race: S3RequestErrors with 412, 409, or 404 but for a missing bucket or upload', () => {
    expect(isConflict(withStatus(412))).toBe(true)
    expect(isConflict(withStatus(409))).toBe(true)
    expect(isConflict(withStatus(404, 'NoSuchKey'))).toBe(true)
    expect(isConflict(withStatus(404, 'NoSuchBucket'))).toBe(false)
    expect(isConflict(withStatus(404, 'NoSuchUpload'))).toBe(false)
    expect(isConflict(withStatus(500))).toBe(false)
    expect(isConflict(withStatus(503))).toBe(false)
    expect(isConflict(new Error('412'))).toBe(false)
  })

  it('slowing down: 429 and 503 only', () => {
    expect([429, 503, 500, 412].map((status) => isSlowDown(withStatus(status)))).toEqual([true, true, false, false])
    expect(isSlowDown(new Error('503'))).toBe(false)
  })
})
