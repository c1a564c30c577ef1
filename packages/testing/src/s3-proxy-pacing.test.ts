/**
 * The proxy as a remote S3: `latencyMs` holds each request before the proxy acts on it, and
 * `bytesPerSecondPerConnection` paces each connection's bodies through token buckets of its own.
 * Asserted on what the proxy records (when requests arrived, were forwarded and answered; when each
 * slice of a body was let through) and on lower bounds of the time the client waited, which load
 * can only lengthen: nothing here asserts that something was fast.
 */
import { randomBytes } from 'node:crypto'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { rejection } from './assertions.js'
import { defaultBurstBytes, largestBurst, type PacedSlice } from './bandwidth.js'
import type { ProxyConnection, S3Proxy, S3ProxyOptions } from './proxy-types.js'
import { startS3Proxy } from './s3-proxy.js'
import { useTestS3 } from './vitest.js'

const s3 = useTestS3()

/** A proxy in front of the test server (or `target`), stopped when the test ends. */
async function proxy(options: Omit<S3ProxyOptions, 'target'> = {}, target = s3.s3.endpoint): Promise<S3Proxy> {
  const started = await startS3Proxy({ target, ...options })
  onTestFinished(() => started.stop())
  return started
}

/** A client without retries through `endpoint`, destroyed when the test ends. */
function clientFor(endpoint: string): S3Client {
  const client = s3.s3.createClient({ endpoint, maxAttempts: 1 })
  onTestFinished(() => client.destroy())
  return client
}

const small = randomBytes(1024 * 1024 + 123)
const medium = randomBytes(512 * 1024)

beforeAll(async () => {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key('pacing/small.bin'), Body: small }))
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key('pacing/medium.bin'), Body: medium }))
})

async function getBytes(client: S3Client, name: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(name) }))
  return Buffer.from((await response.Body?.transformToByteArray()) ?? [])
}

/** Milliseconds `fn` took, on the same clock as the proxy's records. */
async function elapsed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

const bytesOf = (slices: PacedSlice[]) => slices.reduce((sum, slice) => sum + slice.bytes, 0)

describe('latencyMs', () => {
  it('holds every request latencyMs before acting on it: nothing is forwarded or answered sooner', async () => {
    // A second proxy behind this one records when each request really left.
    const behind = await proxy()
    const front = await proxy({ latencyMs: 40 }, behind.endpoint)
    const client = clientFor(front.endpoint)
    const key = s3.key('pacing/latency.txt')
    const took = await elapsed(async () => {
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'x' }))
      expect((await getBytes(client, 'pacing/latency.txt')).toString()).toBe('x')
    })
    expect(front.requests.map((request) => request.method)).toStrictEqual(['PUT', 'GET'])
    expect(behind.requests).toHaveLength(2)
    front.requests.forEach((request, i) => {
      expect(request.latencyMs).toBe(40)
      expect((request.respondedAt as number) - request.receivedAt).toBeGreaterThanOrEqual(40)
      expect((behind.requests[i]?.receivedAt as number) - request.receivedAt).toBeGreaterThanOrEqual(40)
    })
    // Two requests one after the other: the client waited at least both holds.
    expect(took).toBeGreaterThanOrEqual(80)
  })

  it('a function picks the requests to hold and how long; the answers of intercept are held too', async () => {
    const behind = await proxy()
    const front = await proxy(
      {
        latencyMs: (request) => (request.method === 'GET' ? 60 : 0),
        intercept: (request) => (request.url.includes('answered') ? { status: 503, code: 'SlowDown' } : undefined),
      },
      behind.endpoint,
    )
    const client = clientFor(front.endpoint)
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key('pacing/picked.txt'), Body: 'y' }))
    expect((await getBytes(client, 'pacing/picked.txt')).toString()).toBe('y')
    const error = await rejection(getBytes(client, 'pacing/answered.txt'))
    expect(error).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } })
    const [put, get, answered] = front.requests
    expect(put?.latencyMs).toBe(0)
    expect(get?.latencyMs).toBe(60)
    expect(answered?.latencyMs).toBe(60)
    expect((get?.respondedAt as number) - (get?.receivedAt as number)).toBeGreaterThanOrEqual(60)
    expect((answered?.respondedAt as number) - (answered?.receivedAt as number)).toBeGreaterThanOrEqual(60)
    // The answered request never reached the server.
    expect(behind.requests.map((request) => request.method)).toStrictEqual(['PUT', 'GET'])
  })

  it('a bad latency is refused, naming the option: at start, or as a 502 from the proxy when a function returns it', async () => {
    for (const latencyMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const error = await rejection(startS3Proxy({ target: s3.s3.endpoint, latencyMs }))
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toContain('latencyMs')
    }
    const front = await proxy({ latencyMs: () => -5 })
    const error = await rejection(getBytes(clientFor(front.endpoint), 'pacing/small.bin'))
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 502 } })
    expect((error as Error).message).toContain('latencyMs must be a non-negative number, not -5')
  })
})

describe('bytesPerSecondPerConnection', () => {
  it("paces a response body through its connection's bucket", async () => {
    const rate = 2_000_000
    const burst = defaultBurstBytes(rate)
    const capped = await proxy({ bytesPerSecondPerConnection: rate })
    let body: Buffer = Buffer.alloc(0)
    const took = await elapsed(async () => {
      body = await getBytes(clientFor(capped.endpoint), 'pacing/small.bin')
    })
    expect(Buffer.compare(body, small)).toBe(0)
    const [request] = capped.requests
    const connection = capped.connections.find(({ id }) => id === request?.connection) as ProxyConnection
    expect(bytesOf(connection.response)).toBe(small.byteLength)
    // The bucket's schedule: never more than a full bucket ahead of the rate (float rounding may show as a fraction of a byte).
    expect(largestBurst(connection.response, rate)).toBeLessThanOrEqual(burst + 1)
    const paced = ((small.byteLength - burst) / rate) * 1000
    expect((connection.response.at(-1) as PacedSlice).at - connection.openedAt).toBeGreaterThanOrEqual(paced)
    // And the client could not have had the body sooner.
    expect(took).toBeGreaterThanOrEqual(paced)
  })

  it("paces a request body (a PUT) through the connection's other bucket", async () => {
    const rate = 2_000_000
    const burst = 64 * 1024
    const capped = await proxy({ bytesPerSecondPerConnection: rate, burstBytesPerConnection: burst })
    const key = s3.key('pacing/uploaded.bin')
    const took = await elapsed(() => clientFor(capped.endpoint).send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: small })))
    const [put] = capped.requests
    expect(put?.method).toBe('PUT')
    const connection = capped.connections.find(({ id }) => id === put?.connection) as ProxyConnection
    // Every byte of the request body went through the bucket (the SDK may frame it: compare with what it announced).
    const sent = Number(put?.headers['content-length'])
    expect(sent).toBeGreaterThanOrEqual(small.byteLength)
    expect(bytesOf(connection.request)).toBe(sent)
    expect(largestBurst(connection.request, rate)).toBeLessThanOrEqual(burst + 1)
    expect(took).toBeGreaterThanOrEqual(((sent - burst) / rate) * 1000)
    expect(Buffer.compare(await getBytes(s3.client, 'pacing/uploaded.bin'), small)).toBe(0)
  })

  it('each connection has buckets of its own: two connections at once get twice the bandwidth', async () => {
    const rate = 200_000
    const burst = 64 * 1024
    const capped = await proxy({ bytesPerSecondPerConnection: rate, burstBytesPerConnection: burst })
    const client = clientFor(capped.endpoint)
    // Two GETs at once go on two connections.
    const bodies = await Promise.all([getBytes(client, 'pacing/medium.bin'), getBytes(client, 'pacing/medium.bin')])
    for (const body of bodies) expect(Buffer.compare(body, medium)).toBe(0)
    const used = capped.connections.filter((connection) => connection.response.length > 0)
    expect(used).toHaveLength(2)
    expect(new Set(capped.requests.map((request) => request.connection))).toStrictEqual(new Set(used.map(({ id }) => id)))
    for (const connection of used) {
      expect(bytesOf(connection.response)).toBe(medium.byteLength)
      expect(largestBurst(connection.response, rate)).toBeLessThanOrEqual(burst + 1)
    }
    // Together they let through more than one bucket of this rate could have: 1 MiB where one
    // bucket allows 64 KiB plus 200 KB/s. (Both were paced at once: each takes 2.2 s or more, and
    // the proxy took both requests before releasing much of either.)
    const together = used.flatMap((connection) => connection.response).sort((a, b) => a.at - b.at)
    expect(largestBurst(together, rate)).toBeGreaterThan(burst + 1)
  })

  it('bad cap options are refused, naming the option', async () => {
    const cases: [Omit<S3ProxyOptions, 'target'>, string][] = [
      [{ bytesPerSecondPerConnection: 0 }, 'bytesPerSecondPerConnection must be a positive number, not 0'],
      [{ bytesPerSecondPerConnection: -5 }, 'bytesPerSecondPerConnection must be a positive number, not -5'],
      [{ bytesPerSecondPerConnection: Number.NaN }, 'bytesPerSecondPerConnection must be a positive number, not NaN'],
      [{ burstBytesPerConnection: 1000 }, 'burstBytesPerConnection needs bytesPerSecondPerConnection'],
      [{ bytesPerSecondPerConnection: 1e6, burstBytesPerConnection: 0 }, 'burstBytesPerConnection must be a positive integer, not 0'],
      [{ bytesPerSecondPerConnection: 1e6, burstBytesPerConnection: 1.5 }, 'burstBytesPerConnection must be a positive integer, not 1.5'],
    ]
    for (const [options, message] of cases) {
      const error = await rejection(startS3Proxy({ target: s3.s3.endpoint, ...options }))
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toBe(message)
    }
  })

  it('a cut mid-body (resetAfterBytes) still cuts on a capped connection', async () => {
    const capped = await proxy({
      bytesPerSecondPerConnection: 4_000_000,
      intercept: (request) => (request.method === 'GET' ? { resetAfterBytes: 300_000 } : undefined),
    })
    const error = await rejection(getBytes(clientFor(capped.endpoint), 'pacing/small.bin'))
    expect(error).toBeInstanceOf(Error)
    expect(capped.resets).toBe(1)
  })

  it('without a cap no body is paced; with recordRequests: false nothing is recorded', async () => {
    const plain = await proxy()
    expect(Buffer.compare(await getBytes(clientFor(plain.endpoint), 'pacing/small.bin'), small)).toBe(0)
    expect(plain.requests.map(({ latencyMs, connection }) => ({ latencyMs, connection }))).toStrictEqual([
      { latencyMs: 0, connection: plain.connections[0]?.id },
    ])
    expect(plain.requests[0]?.respondedAt).toBeGreaterThanOrEqual(plain.requests[0]?.receivedAt as number)
    expect(plain.connections.map(({ response, request }) => [response, request])).toStrictEqual([[[], []]])

    const silent = await proxy({ recordRequests: false, latencyMs: 5, bytesPerSecondPerConnection: 50e6 })
    expect(Buffer.compare(await getBytes(clientFor(silent.endpoint), 'pacing/small.bin'), small)).toBe(0)
    expect(silent.requests).toStrictEqual([])
    expect(silent.connections).toStrictEqual([])
  })
})
