/**
 * Conditional writes in the form the server honours, against a real server: the If-Match form
 * found from the server's answers and remembered per client (against the server itself, and
 * through a proxy that refuses the quoted form as Ceph RGW 16 does, so that it runs everywhere); a
 * 412 after which the object changed, or is gone, is a lost race (no other form tried); both forms
 * refused over an unchanged object is `ConditionalWriteUnsupportedError`; a confirmed form needs no
 * HEAD; the form stated by `rememberServerCapabilities` (or a probe) is sent first; 409
 * `ConditionalRequestConflict` is sent again on a PUT, not on a completion; a 412 reads
 * `PreconditionFailed` whatever the SDK made of its body.
 */
import { createHash } from 'node:crypto'
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { countRequests, type ProxiedRequest, rejection, type S3Proxy, type S3ProxyOptions, startS3Proxy } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { ConditionalWriteUnsupportedError, S3RequestError } from '../format/errors.js'
import { CONFLICT_RETRIES } from './conditional-write.js'
import type { S3Context } from './context.js'
import { putSingle } from './multipart-upload.js'
import { putBytes } from './object-writer.js'
import { rememberServerCapabilities, serverKnowledge } from './server-knowledge.js'

const s3 = useTestS3()
const server = testServer()
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
})

/** A new client through a proxy (recording every request) in front of the test server. */
async function proxied(options: Omit<S3ProxyOptions, 'target'> = {}): Promise<{ proxy: S3Proxy; ctx: S3Context }> {
  const proxy = await startS3Proxy({ target: s3.s3, ...options })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint })
  clients.push(client)
  return { proxy, ctx: { client, bucket: s3.bucket } }
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex')
const isPutOf = (key: string) => (request: ProxiedRequest) =>
  request.method === 'PUT' && decodeURIComponent(new URL(request.url, 'http://x').pathname) === `/${s3.bucket}/${key}`
const ifMatchesSent = (proxy: S3Proxy, key: string) => proxy.requests.filter(isPutOf(key)).map((request) => request.headers['if-match'])

async function put(key: string, body: string): Promise<string> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
  return md5(body)
}

async function textOf(key: string): Promise<string> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return (response.Body as { transformToString(): Promise<string> }).transformToString()
}

/** Answers a quoted If-Match with 412, as Ceph RGW 16 does even when it matches. */
const refuseQuoted = (request: ProxiedRequest) =>
  request.method === 'PUT' && request.headers['if-match']?.startsWith('"') ? { status: 412, code: 'PreconditionFailed' } : undefined

describe('the If-Match form, learned from the answers and remembered per client', () => {
  it('against the server itself: the form it honours is found, then sent first', async () => {
    const { proxy, ctx } = await proxied()
    const key = s3.key('form/server.txt')
    const v1 = await put(key, 'v1')
    await putBytes(ctx, key, Buffer.from('v2'), { ifMatch: v1 })
    await putBytes(ctx, key, Buffer.from('v3'), { ifMatch: md5('v2') })
    expect(await textOf(key)).toBe('v3')
    // Relies on the server's form: Ceph RGW 16 refuses the quoted one (then bare, remembered); others take it.
    const bareOnly = server.capabilities.conditionalPut === 'bare'
    expect(ifMatchesSent(proxy, key)).toEqual(bareOnly ? [`"${v1}"`, v1, md5('v2')] : [`"${v1}"`, `"${md5('v2')}"`])
    expect(serverKnowledge(ctx.client)).toMatchObject({ ifMatchForm: bareOnly ? 'bare' : 'quoted', ifMatchConfirmed: true })
  })

  it('a server that refuses the quoted form (the proxy answers it 412, as Ceph RGW 16): bare once, then bare from the start', async () => {
    const { proxy, ctx } = await proxied({ intercept: refuseQuoted })
    const counts = countRequests(ctx.client)
    const key = s3.key('form/bare-only.txt')
    const v1 = await put(key, 'v1')
    expect(serverKnowledge(ctx.client)).toMatchObject({ ifMatchForm: 'quoted', ifMatchConfirmed: false })
    const written = await putSingle(ctx, key, Buffer.from('v2'), { ifMatch: `"${v1}"` })
    expect(written).toBe(md5('v2'))
    expect(counts).toEqual({ PutObjectCommand: 2, HeadObjectCommand: 1 }) // quoted (412), a HEAD (unchanged), bare
    await putSingle(ctx, key, Buffer.from('v3'), { ifMatch: md5('v2') })
    expect(ifMatchesSent(proxy, key)).toEqual([`"${v1}"`, v1, md5('v2')])
    expect(counts).toEqual({ PutObjectCommand: 3, HeadObjectCommand: 1 })
    expect(await textOf(key)).toBe('v3')
  })

  it('the form stated with rememberServerCapabilities (as probeServer records it) is sent first', async () => {
    const { proxy, ctx } = await proxied({ intercept: refuseQuoted })
    const key = s3.key('form/stated.txt')
    const v1 = await put(key, 'v1')
    rememberServerCapabilities(ctx.client, { conditionalPut: 'bare' })
    await putSingle(ctx, key, Buffer.from('v2'), { ifMatch: v1 })
    expect(ifMatchesSent(proxy, key)).toEqual([v1])
  })

  it('another client of the same server learns on its own (knowledge is per client)', async () => {
    const first = await proxied({ intercept: refuseQuoted })
    const second = await proxied({ intercept: refuseQuoted })
    const key = s3.key('form/per-client.txt')
    const v1 = await put(key, 'v1')
    await putSingle(first.ctx, key, Buffer.from('v2'), { ifMatch: v1 })
    await putSingle(second.ctx, key, Buffer.from('v3'), { ifMatch: md5('v2') })
    expect(ifMatchesSent(second.proxy, key)).toEqual([`"${md5('v2')}"`, md5('v2')])
  })
})

describe('a 412 that is a lost race', () => {
  it('the object changed meanwhile: the 412 stands, no other form is tried', async () => {
    const key = s3.key('race/changed.txt')
    const v1 = await put(key, 'v1')
    const { proxy, ctx } = await proxied({
      intercept: async (request) => {
        if (!isPutOf(key)(request)) return undefined
        await put(key, 'another writer') // before this write reaches the server
        return { status: 412, code: 'PreconditionFailed' }
      },
    })
    const counts = countRequests(ctx.client)
    const error = await rejection(putSingle(ctx, key, Buffer.from('v2'), { ifMatch: v1 }))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 412, operation: 'PutObject', key })
    expect(counts).toEqual({ PutObjectCommand: 1, HeadObjectCommand: 1 })
    expect(ifMatchesSent(proxy, key)).toHaveLength(1)
    expect(await textOf(key)).toBe('another writer')
    expect(serverKnowledge(ctx.client).ifMatchConfirmed).toBe(false)
  })

  it('the object is gone (a 412 as Ceph RGW answers If-Match on a missing key): the 412 stands', async () => {
    const key = s3.key('race/gone.txt')
    const v1 = await put(key, 'v1')
    const { ctx } = await proxied({
      intercept: async (request) => {
        if (!isPutOf(key)(request)) return undefined
        await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }))
        return { status: 412, code: 'PreconditionFailed' }
      },
    })
    const counts = countRequests(ctx.client)
    expect(await rejection(putSingle(ctx, key, Buffer.from('v2'), { ifMatch: v1 }))).toMatchObject({ statusCode: 412 })
    expect(counts).toEqual({ PutObjectCommand: 1, HeadObjectCommand: 1 })
  })

  it('once a form is confirmed, a 412 is a lost race without a HEAD', async () => {
    const key = s3.key('race/confirmed.txt')
    let refuse = false
    const { ctx } = await proxied({
      intercept: (request) => (refuse && isPutOf(key)(request) ? { status: 412, code: 'PreconditionFailed' } : undefined),
    })
    const v1 = await put(key, 'v1')
    rememberServerCapabilities(ctx.client, { conditionalPut: 'quoted' })
    const counts = countRequests(ctx.client)
    refuse = true
    expect(await rejection(putSingle(ctx, key, Buffer.from('v2'), { ifMatch: v1 }))).toMatchObject({ statusCode: 412 })
    expect(counts).toEqual({ PutObjectCommand: 1 })
  })

  it.skipIf(!server.supports('conditional PutObject'))(
    'against the server itself, a stale ETag is refused in the form it honours (needs conditional PutObject)',
    async () => {
      const { ctx } = await proxied()
      const key = s3.key('race/stale.txt')
      await put(key, 'v1')
      const error = await rejection(putBytes(ctx, key, Buffer.from('v2'), { ifMatch: md5('not v1') }))
      expect(error).toMatchObject({ statusCode: 412, key })
      expect((error as Error).message).toContain('PreconditionFailed')
      expect(await textOf(key)).toBe('v1')
    },
  )
})

describe('a server that refuses If-Match in both forms over an unchanged object', () => {
  it('ConditionalWriteUnsupportedError naming conditionalPut, after one PUT in each form; the object unchanged', async () => {
    const key = s3.key('refused/both.txt')
    const v1 = await put(key, 'v1')
    const { proxy, ctx } = await proxied({
      intercept: (request) => (request.headers['if-match'] ? { status: 412, code: 'PreconditionFailed' } : undefined),
    })
    const error = await rejection(putBytes(ctx, key, Buffer.from('v2'), { ifMatch: v1 }))
    expect(error).toBeInstanceOf(ConditionalWriteUnsupportedError)
    expect(error).toMatchObject({ key, capability: 'conditionalPut', known: true })
    expect((error as Error).message).toContain('both ETag forms')
    expect(ifMatchesSent(proxy, key)).toEqual([`"${v1}"`, v1])
    expect(await textOf(key)).toBe('v1')
  })
})

describe('409 ConditionalRequestConflict', () => {
  it(`on a PutObject: sent again (up to ${CONFLICT_RETRIES} times), as AWS documents`, async () => {
    const key = s3.key('conflict/put.txt')
    let answered = 0
    const { proxy, ctx } = await proxied({
      intercept: (request) =>
        isPutOf(key)(request) && answered++ < CONFLICT_RETRIES ? { status: 409, code: 'ConditionalRequestConflict' } : undefined,
    })
    await putSingle(ctx, key, Buffer.from('created'), { ifNoneMatch: '*' })
    expect(proxy.requests.filter(isPutOf(key))).toHaveLength(CONFLICT_RETRIES + 1)
    expect(await textOf(key)).toBe('created')
  })

  it('one more than that: the 409 is the error', async () => {
    const key = s3.key('conflict/put-always.txt')
    const { proxy, ctx } = await proxied({
      intercept: (request) => (isPutOf(key)(request) ? { status: 409, code: 'ConditionalRequestConflict' } : undefined),
    })
    const error = await rejection(putSingle(ctx, key, Buffer.from('x'), { ifNoneMatch: '*' }))
    expect(error).toMatchObject({ statusCode: 409, operation: 'PutObject', key })
    expect(proxy.requests.filter(isPutOf(key))).toHaveLength(CONFLICT_RETRIES + 1)
  })
})

describe('S3RequestError messages', () => {
  it('a 412 whose body the SDK could not parse (Ceph RGW: "UnknownError") reads PreconditionFailed', () => {
    const sdkError = (name: string) => Object.assign(new Error('UnknownError'), { name, $metadata: { httpStatusCode: 412 } })
    expect(new S3RequestError('PutObject', 'k', sdkError('PreconditionFailed')).message).toBe(
      'PutObject k failed (HTTP 412): PreconditionFailed',
    )
    expect(new S3RequestError('PutObject', 'k', sdkError('Unknown')).message).toBe('PutObject k failed (HTTP 412): PreconditionFailed')
    const withMessage = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })
    expect(new S3RequestError('GetObject', 'k', withMessage).message).toBe('GetObject k failed (HTTP 403): Access Denied')
  })
})
