/**
 * The test proxy itself, against the real local S3: cuts after exactly n body bytes (seen with a
 * raw HTTP GET, below the SDK), delays, holds requests for an async `intercept`, answers requests
 * itself, and still enforces conditional writes.
 */
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ProxyAction, type ProxyAnswer, type S3Proxy, type S3ProxyOptions, startS3Proxy } from './s3-proxy.js'
import { useTestS3 } from './vitest.js'

const s3 = useTestS3()
const proxies: S3Proxy[] = []
const clients: S3Client[] = []

async function proxy(options: Omit<S3ProxyOptions, 'target'> = {}, target = s3.s3.endpoint): Promise<S3Proxy> {
  const started = await startS3Proxy({ target, ...options })
  proxies.push(started)
  return started
}

function clientFor(endpoint: string): S3Client {
  const client = s3.s3.createClient({ endpoint, maxAttempts: 1 })
  clients.push(client)
  return client
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
})

/** What a raw HTTP GET received: status, headers, the body bytes, and whether it was complete. */
interface RawResult {
  status: number
  headers: Record<string, string>
  body: Buffer
  /** The body has all the bytes its Content-Length announced. */
  complete: boolean
}

/**
 * A GET written by hand on a TCP socket (no HTTP client, SDK, retries or checksum streams, which
 * may drop bytes they buffered when a connection breaks), reading every byte until the
 * connection closes. fauxqs does not check signatures, so an unsigned path-style GET will do.
 * `readSlowly` pauses after each chunk, so the proxy meets backpressure.
 */
function rawGet(endpoint: string, path: string, options: { readSlowly?: boolean } = {}): Promise<RawResult> {
  const { hostname, port } = new URL(endpoint)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      if (options.readSlowly) {
        socket.pause()
        setTimeout(() => socket.resume(), 2)
      }
    })
    socket.on('error', reject)
    socket.on('close', () => {
      const all = Buffer.concat(chunks)
      const split = all.indexOf('\r\n\r\n')
      if (split < 0) return reject(new Error(`no complete response head in ${all.byteLength} bytes`))
      const [statusLine = '', ...lines] = all.subarray(0, split).toString('latin1').split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const body = all.subarray(split + 4)
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers,
        body,
        complete: headers['content-length'] !== undefined && body.byteLength === Number(headers['content-length']),
      })
    })
  })
}

const size = 3 * 1024 * 1024 + 123
const data = randomBytes(size)
let path: string

beforeAll(async () => {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key('proxy/data.bin'), Body: data }))
  path = `/${s3.bucket}/${s3.key('proxy/data.bin')}`
})

// The raw GETs are unsigned: only the embedded server (which does not check signatures) takes them.
const embedded = !process.env.S3_ENDPOINT_URL

describe.runIf(embedded)('resetAfterBytes', () => {
  it('sanity: a raw GET without faults gets the whole object', async () => {
    const plain = await proxy()
    const result = await rawGet(plain.endpoint, path)
    expect(result.complete).toBe(true)
    expect(result.status).toBe(200)
    expect(Buffer.compare(result.body, data)).toBe(0)
    expect(plain.resets).toBe(0)
  })

  it.each([
    ['mid-body', 1024 * 1024 + 7, false],
    ['mid-body, with a slow reader', 2 * 1024 * 1024 + 11, true],
    ['one byte', 1, false],
    ['right after the headers', 0, false],
    ['one byte short of the end', size - 1, false],
  ])('cuts the body after exactly n bytes (%s)', async (_name, n, readSlowly) => {
    const faulty = await proxy({ intercept: (request) => (request.method === 'GET' ? { resetAfterBytes: n } : undefined) })
    const result = await rawGet(faulty.endpoint, path, { readSlowly })
    // Status and headers come through as the server sent them, Content-Length of the whole body included.
    expect(result.status).toBe(200)
    expect(result.headers['content-length']).toBe(String(size))
    expect(result.headers.etag).toBeDefined()
    // Then exactly the first n bytes, and the response breaks.
    expect(result.body.byteLength).toBe(n)
    expect(Buffer.compare(result.body, data.subarray(0, n))).toBe(0)
    expect(result.complete).toBe(false)
    expect(faulty.resets).toBe(1)
  })

  it('a body of n bytes or fewer goes through whole, and the proxy keeps serving', async () => {
    const faulty = await proxy({ intercept: () => ({ resetAfterBytes: size }) })
    const result = await rawGet(faulty.endpoint, path)
    expect(result.complete).toBe(true)
    expect(Buffer.compare(result.body, data)).toBe(0)
    expect(faulty.resets).toBe(0)
  })

  it('only the requests intercept picks are cut; a ranged GET is cut relative to its own body', async () => {
    let gets = 0
    const faulty = await proxy({
      intercept: (request) => (request.method === 'GET' && ++gets === 1 ? { resetAfterBytes: 1000 } : undefined),
    })
    const client = clientFor(faulty.endpoint)
    const first = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key('proxy/data.bin') }))
    const firstError = await first.Body?.transformToByteArray().catch((e: unknown) => e)
    expect(firstError).toBeInstanceOf(Error)
    // The next GET is not touched.
    const second = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key('proxy/data.bin'), Range: 'bytes=1000-' }))
    const rest = Buffer.from((await second.Body?.transformToByteArray()) ?? [])
    expect(Buffer.compare(rest, data.subarray(1000))).toBe(0)
    expect(faulty.resets).toBe(1)
    expect(faulty.requests.map((r) => [r.method, r.headers.range])).toStrictEqual([
      ['GET', undefined],
      ['GET', 'bytes=1000-'],
    ])
  })

  it('a malformed resetAfterBytes is a 502 from the proxy, not a hang', async () => {
    const faulty = await proxy({ intercept: () => ({ resetAfterBytes: -1 }) })
    const result = await rawGet(faulty.endpoint, path)
    expect(result.status).toBe(502)
    expect(result.body.toString()).toContain('ProxyError')
  })
})

describe.runIf(embedded)('delayMs and async intercept', () => {
  it('delayMs holds the request back before forwarding it', async () => {
    // A second proxy behind the first one records when the request really leaves.
    const behind = await proxy()
    const front = await proxy({ intercept: () => ({ delayMs: 1500 }) }, behind.endpoint)
    const pending = rawGet(front.endpoint, path)
    while (front.requests.length === 0) await sleep(5)
    await sleep(200)
    expect(behind.requests).toHaveLength(0)
    const result = await pending
    expect(behind.requests).toHaveLength(1)
    expect(result.complete).toBe(true)
    expect(Buffer.compare(result.body, data)).toBe(0)
  })

  it('delayMs on an answer: answered late, never forwarded', async () => {
    const behind = await proxy()
    const front = await proxy({ intercept: (): ProxyAnswer => ({ status: 503, code: 'SlowDown', delayMs: 50 }) }, behind.endpoint)
    const result = await rawGet(front.endpoint, path)
    expect(result.status).toBe(503)
    expect(result.body.toString()).toContain('<Code>SlowDown</Code>')
    expect(behind.requests).toHaveLength(0)
  })

  it('an async intercept holds its request until it settles, then its action applies', async () => {
    const behind = await proxy()
    let release: (action: ProxyAction | undefined) => void = () => {}
    const front = await proxy(
      {
        intercept: () =>
          new Promise<ProxyAction | undefined>((resolve) => {
            release = resolve
          }),
      },
      behind.endpoint,
    )
    const pending = rawGet(front.endpoint, path)
    while (front.requests.length === 0) await sleep(5)
    await sleep(200)
    expect(behind.requests).toHaveLength(0)
    release({ resetAfterBytes: 4096 })
    const result = await pending
    expect(behind.requests).toHaveLength(1)
    expect(result.body.byteLength).toBe(4096)
    expect(result.complete).toBe(false)
    expect(front.resets).toBe(1)
  })
})

describe('answers and conditional writes (unchanged behaviour)', () => {
  it('an intercept answer is sent instead of forwarding, as an S3 error', async () => {
    const answering = await proxy({
      intercept: (request) => (request.method === 'GET' ? { status: 403, code: 'AccessDenied' } : undefined),
    })
    const error = await clientFor(answering.endpoint)
      .send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key('proxy/data.bin') }))
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })
  })

  it('enforces If-None-Match and If-Match on PutObject with 412, and forwards what passes', async () => {
    const enforcing = await proxy({ enforceConditionalWrites: true })
    const client = clientFor(enforcing.endpoint)
    const key = s3.key('proxy/conditional.txt')
    const created = await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'one', IfNoneMatch: '*' }))
    expect(created.ETag).toBeDefined()
    const again = await client
      .send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'two', IfNoneMatch: '*' }))
      .catch((e: unknown) => e)
    expect(again).toMatchObject({ $metadata: { httpStatusCode: 412 } })
    const stale = await client
      .send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'two', IfMatch: '"0123456789abcdef0123456789abcdef"' }))
      .catch((e: unknown) => e)
    expect(stale).toMatchObject({ $metadata: { httpStatusCode: 412 } })
    expect(enforcing.conflicts).toBe(2)
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'three', IfMatch: created.ETag }))
    const read = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    expect(await read.Body?.transformToString()).toBe('three')
  })

  it('a conditional write that passes still goes through intercept', async () => {
    const enforcing = await proxy({
      enforceConditionalWrites: true,
      intercept: (request) => (request.method === 'PUT' ? { status: 403, code: 'AccessDenied' } : undefined),
    })
    const key = s3.key('proxy/conditional-intercepted.txt')
    const error = await clientFor(enforcing.endpoint)
      .send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'x', IfNoneMatch: '*' }))
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'AccessDenied' })
    expect(enforcing.conflicts).toBe(0)
  })
})
