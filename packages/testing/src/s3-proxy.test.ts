/**
 * The test proxy itself, against the real local S3: cuts after exactly n body bytes (seen with a
 * raw HTTP GET, below the SDK), delays, holds requests for an async `intercept`, answers requests
 * itself, and still enforces conditional writes. And `randomFaults`: the same decisions for the
 * same seed, rates as asked over many requests, `only` / `resetOnly` / `maxInARow` obeyed, and a
 * client with `retryQuickly` reading right through it.
 */
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ProxiedRequest, ProxyAction, ProxyAnswer, ProxyFault, S3Proxy, S3ProxyOptions } from './proxy-types.js'
import { randomFaults } from './random-faults.js'
import { retryQuickly } from './retry-quickly.js'
import { startS3Proxy } from './s3-proxy.js'
import { testServer, useTestS3 } from './vitest.js'

const s3 = useTestS3()
const proxies: S3Proxy[] = []
const clients: S3Client[] = []

async function proxy(options: Omit<S3ProxyOptions, 'target'> = {}, target: S3ProxyOptions['target'] = s3.s3): Promise<S3Proxy> {
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

/** Thrown by the middleware of {@link signedGet} to stop the SDK from sending what it signed. */
class Signed extends Error {
  readonly request: { path: string; query: Record<string, string | string[] | null>; headers: Record<string, string> }
  constructor(request: Signed['request']) {
    super('signed, not sent')
    this.request = request
  }
}

/**
 * The request line target and headers of a GetObject of `key` addressed to `endpoint`, signed as
 * the SDK signs it (so that a server that checks signatures takes it), without sending it.
 */
async function signedGet(endpoint: string, key: string): Promise<{ target: string; headers: Record<string, string> }> {
  const client = clientFor(endpoint)
  // Innermost middleware: it sees the request once it is signed, just before it would be sent.
  client.middlewareStack.add(
    () => async (args) => {
      throw new Signed(args.request as Signed['request'])
    },
    { step: 'deserialize', priority: 'low', name: 'captureSignedRequest' },
  )
  const error = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key })).catch((e: unknown) => e)
  if (!(error instanceof Signed)) throw error
  const query = Object.entries(error.request.query)
    .map(([name, value]) =>
      value === null ? encodeURIComponent(name) : `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`,
    )
    .join('&')
  return { target: `${error.request.path}${query ? `?${query}` : ''}`, headers: error.request.headers }
}

/**
 * A GET of `key` written by hand on a TCP socket (no HTTP client, SDK, retries or checksum
 * streams, which may drop bytes they buffered when a connection breaks), reading every byte until
 * the connection closes. It is signed for `endpoint` (the proxy forwards the Host header as it
 * came), so servers that check signatures take it too. `readSlowly` pauses after each chunk, so
 * the proxy meets backpressure.
 */
async function rawGet(endpoint: string, key: string, options: { readSlowly?: boolean } = {}): Promise<RawResult> {
  const { hostname, port } = new URL(endpoint)
  const { target, headers } = await signedGet(endpoint, key)
  const head = Object.entries({ ...headers, host: `${hostname}:${port}`, connection: 'close' })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    socket.write(`GET ${target} HTTP/1.1\r\n${head}\r\n`)
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
  path = s3.key('proxy/data.bin')
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: path, Body: data }))
})

describe('resetAfterBytes', () => {
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

describe('delayMs and async intercept', () => {
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

  it('requests are logged by default; recordRequests: false keeps none, and still forwards', async () => {
    const key = s3.key('proxy/logged.bin')
    const logging = await proxy()
    const silent = await proxy({ recordRequests: false, intercept: () => ({ delayMs: 1 }) })
    for (const endpoint of [logging.endpoint, silent.endpoint]) {
      await clientFor(endpoint).send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'x' }))
    }
    expect(logging.requests.map((request) => request.method)).toEqual(['PUT'])
    expect(silent.requests).toEqual([])
    const read = await clientFor(silent.endpoint).send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    expect(await read.Body?.transformToString()).toBe('x')
    expect(silent.requests).toEqual([])
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
    // The proxy takes either form; the server behind it may honour only one (Ceph RGW 16: the bare ETag).
    const current = testServer().capabilities.conditionalPut === 'bare' ? created.ETag?.replace(/"/g, '') : created.ETag
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'three', IfMatch: current }))
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

// ------------------------------------------------------------------------------ randomFaults

const get = (path: string, headers: ProxiedRequest['headers'] = {}): ProxiedRequest => ({ method: 'GET', url: path, headers })
const put = (path: string): ProxiedRequest => ({ method: 'PUT', url: path, headers: {} })

/** A comparable form of an action: functions (random cuts) evaluated on a body of 1,000,000 bytes. */
function describeAction(action: ProxyAction | undefined): unknown {
  if (action === undefined || 'status' in action) return action
  const cut = (action as ProxyFault).resetAfterBytes
  return { ...action, resetAfterBytes: typeof cut === 'function' ? cut(1_000_000) : cut }
}

/** Requests of many keys, GETs and PUTs mixed, always the same ones. */
const requestSequence = (n: number): ProxiedRequest[] =>
  Array.from({ length: n }, (_, i) => (i % 3 === 0 ? put(`/b/k-${i % 97}`) : get(`/b/k-${i % 89}?x=${i}`)))

describe('randomFaults', () => {
  it('the same seed gives the same decisions; another seed, other ones', () => {
    const options = { rate: 0.1, resetRate: 0.1, dropRate: 0.1, delayRate: 0.1, maxDelayMs: 30 }
    const requests = requestSequence(2000)
    const run = (seed: number) => {
      const faults = randomFaults({ seed, ...options })
      return { actions: requests.map((request) => describeAction(faults(request))), injected: faults.injected }
    }
    const a = run(1234)
    const b = run(1234)
    const c = run(1235)
    expect(b.actions).toStrictEqual(a.actions)
    expect(b.injected).toStrictEqual(a.injected)
    expect(c.actions).not.toStrictEqual(a.actions)
    // Not a degenerate sequence: each kind of fault happened.
    expect(a.injected.errors).toBeGreaterThan(0)
    expect(a.injected.resets).toBeGreaterThan(0)
    expect(a.injected.drops).toBeGreaterThan(0)
    expect(a.injected.delays).toBeGreaterThan(0)
  })

  it('adding drops leaves the other decisions of a seed as they were', () => {
    const requests = requestSequence(2000)
    const without = randomFaults({ seed: 77, rate: 0.1, resetRate: 0.1 })
    const withDrops = randomFaults({ seed: 77, rate: 0.1, resetRate: 0.1, dropRate: 0.1 })
    const a = requests.map((request) => describeAction(without(request)))
    const b = requests.map((request) => describeAction(withDrops(request)))
    const changed = b.flatMap((action, i) => (JSON.stringify(action) === JSON.stringify(a[i]) ? [] : [{ before: a[i], after: action }]))
    expect(changed.length).toBe(withDrops.injected.drops)
    expect(changed.every(({ before, after }) => before === undefined && (after as { dropResponse?: boolean }).dropResponse === true)).toBe(
      true,
    )
  })

  it('injects at the rates asked (20,000 requests, fixed seed): errors, their statuses, resets on GETs only, delays', () => {
    const faults = randomFaults({ seed: 99, rate: 0.05, resetRate: 0.05, dropRate: 0.05, delayRate: 0.2, maxDelayMs: 40 })
    const n = 20_000
    const requests = requestSequence(n)
    const gets = requests.filter((r) => r.method === 'GET').length
    const actions = requests.map((request) => ({ request, action: faults(request) }))
    const answered = actions.filter(({ action }) => action !== undefined && 'status' in action)
    const cut = actions.filter(({ action }) => action !== undefined && (action as ProxyFault).resetAfterBytes !== undefined)
    const dropped = actions.filter(({ action }) => action !== undefined && (action as ProxyFault).dropResponse === true)
    const delayed = actions.filter(({ action }) => (action?.delayMs ?? 0) > 0)
    // Binomial(20,000, 0.05): σ ≈ 31; the bounds are more than 4σ away.
    expect(answered.length).toBeGreaterThan(0.043 * n)
    expect(answered.length).toBeLessThan(0.057 * n)
    expect(faults.injected.errors).toBe(answered.length)
    expect(faults.injected.requests).toBe(n)
    // 503 SlowDown and 500 InternalError, about half each.
    const by503 = answered.filter(({ action }) => (action as ProxyAnswer).status === 503)
    expect(by503.every(({ action }) => (action as ProxyAnswer).code === 'SlowDown')).toBe(true)
    const by500 = answered.filter(({ action }) => (action as ProxyAnswer).status === 500)
    expect(by500.every(({ action }) => (action as ProxyAnswer).code === 'InternalError')).toBe(true)
    expect(by503.length + by500.length).toBe(answered.length)
    expect(faults.injected.byStatus).toStrictEqual({ 503: by503.length, 500: by500.length })
    expect(by503.length / answered.length).toBeGreaterThan(0.4)
    expect(by503.length / answered.length).toBeLessThan(0.6)
    // Resets: GETs only, about 5% of those not answered.
    expect(cut.every(({ request }) => request.method === 'GET')).toBe(true)
    expect(faults.injected.resets).toBe(cut.length)
    expect(cut.length / (gets * 0.95)).toBeGreaterThan(0.04)
    expect(cut.length / (gets * 0.95)).toBeLessThan(0.06)
    // Drops: about 5% of the requests not answered or cut, of any method.
    expect(faults.injected.drops).toBe(dropped.length)
    expect(dropped.length / (n - answered.length - cut.length)).toBeGreaterThan(0.04)
    expect(dropped.length / (n - answered.length - cut.length)).toBeLessThan(0.06)
    expect(new Set(dropped.map(({ request }) => request.method))).toStrictEqual(new Set(['GET', 'PUT']))
    // Delays: about 20% of all requests, each at most maxDelayMs.
    expect(delayed.length / n).toBeGreaterThan(0.18)
    expect(delayed.length / n).toBeLessThan(0.22)
    expect(delayed.every(({ action }) => (action?.delayMs as number) < 40)).toBe(true)
    expect(faults.injected.delays).toBe(delayed.length)
  })

  it("'random' cuts fall anywhere in the body; a number is used as given", () => {
    const faults = randomFaults({ seed: 5, rate: 0, resetRate: 1 })
    const points = Array.from({ length: 1000 }, () => {
      const cut = (faults(get('/b/k')) as ProxyFault).resetAfterBytes as (length: number | undefined) => number
      expect(cut(undefined)).toBe(0)
      expect(cut(0)).toBe(0)
      return cut(1000)
    })
    expect(Math.min(...points)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...points)).toBeLessThan(1000)
    expect(Math.min(...points)).toBeLessThan(50)
    expect(Math.max(...points)).toBeGreaterThan(950)
    const fixed = randomFaults({ seed: 5, rate: 0, resetRate: 1, resetAfterBytes: 4096 })
    expect(fixed(get('/b/k'))).toStrictEqual({ delayMs: 0, resetAfterBytes: 4096 })
  })

  it('only, resetOnly and statuses are obeyed', () => {
    const faults = randomFaults({
      seed: 3,
      rate: 0.5,
      resetRate: 1,
      statuses: [429],
      only: (request) => request.url.startsWith('/b/yes'),
      resetOnly: (request) => request.method === 'PUT',
    })
    for (let i = 0; i < 200; i++) expect(faults(get(`/b/no-${i}`))).toBeUndefined()
    expect(faults.injected.requests).toBe(0)
    const actions = Array.from({ length: 400 }, (_, i) => faults(i % 2 ? put(`/b/yes-${i}`) : get(`/b/yes-${i}`)))
    expect(faults.injected.requests).toBe(400)
    for (const [i, action] of actions.entries()) {
      if (action && 'status' in action) expect(action).toMatchObject({ status: 429, code: 'InjectedError' })
      else if (i % 2) expect(action).toMatchObject({ resetAfterBytes: expect.any(Function) })
      else expect(action).toBeUndefined() // a GET that was not answered is forwarded untouched
    }
    expect(faults.injected.errors).toBeGreaterThan(150)
    expect(faults.injected.errors).toBeLessThan(250)
  })

  it('maxInARow: after that many faults on one method and path, the next request goes through clean', () => {
    const faults = randomFaults({ seed: 11, rate: 1, maxInARow: 3 })
    const onA = Array.from({ length: 8 }, () => faults(get('/b/a?partNumber=1')))
    expect(onA.map((action) => (action === undefined ? 'clean' : 'fault'))).toStrictEqual([
      'fault',
      'fault',
      'fault',
      'clean',
      'fault',
      'fault',
      'fault',
      'clean',
    ])
    // Another key, or another method on the same key, has its own count.
    expect(faults(get('/b/b'))).toBeDefined()
    expect(faults(put('/b/a'))).toBeDefined()
    expect(faults.injected.spared).toBe(2)
    expect(faults.injected.errors).toBe(8)
  })

  it('by default never drops the answer of CreateMultipartUpload (an upload no client could abort)', () => {
    const faults = randomFaults({ seed: 4, rate: 0, dropRate: 1 })
    const create: ProxiedRequest = { method: 'POST', url: '/b/k?uploads', headers: {} }
    const createWithValue: ProxiedRequest = { method: 'POST', url: '/b/k?uploads=', headers: {} }
    const complete: ProxiedRequest = { method: 'POST', url: '/b/k?uploadId=abc', headers: {} }
    expect(faults(create)).toBeUndefined()
    expect(faults(createWithValue)).toBeUndefined()
    expect(faults(complete)).toStrictEqual({ delayMs: 0, dropResponse: true })
    expect(faults(put('/b/k?partNumber=1&uploadId=abc'))).toStrictEqual({ delayMs: 0, dropResponse: true })
  })

  it('refuses rates outside [0, 1] and bad cut points', () => {
    expect(() => randomFaults({ seed: 1, rate: 1.5 })).toThrow(TypeError)
    expect(() => randomFaults({ seed: 1, resetRate: -0.1 })).toThrow(TypeError)
    expect(() => randomFaults({ seed: 1, resetAfterBytes: -1 })).toThrow(TypeError)
    expect(() => randomFaults({ seed: 1, statuses: [] })).toThrow(TypeError)
    expect(() => randomFaults({ seed: 1, resetRate: 0.6, dropRate: 0.6 })).toThrow(TypeError)
  })
})

describe('randomFaults through the proxy', () => {
  const objects = Array.from({ length: 40 }, (_, i) => ({ name: `rf/obj-${i}.bin`, data: randomBytes(20_000 + i * 1000) }))

  beforeAll(async () => {
    for (const { name, data } of objects) await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key(name), Body: data }))
  })

  it('with retryQuickly, every GetObject answered 503 or 500 on the way still succeeds; without retries, the fault shows', async () => {
    const faults = randomFaults({ seed: 2024, rate: 0.3 })
    const lossy = await proxy({ intercept: faults })
    const retrying = s3.s3.createClient({ endpoint: lossy.endpoint, ...retryQuickly({ maxAttempts: 20, baseDelayMs: 2 }) })
    clients.push(retrying)
    for (const { name, data } of objects) {
      const response = await retrying.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(name) }))
      expect(Buffer.compare(Buffer.from((await response.Body?.transformToByteArray()) ?? []), data)).toBe(0)
    }
    expect(faults.injected.errors).toBeGreaterThan(0)
    expect(lossy.requests.length).toBe(objects.length + faults.injected.errors)
    expect(faults.injected.byStatus[503]).toBeGreaterThan(0)
    expect(faults.injected.byStatus[500]).toBeGreaterThan(0)

    const strict = clientFor((await proxy({ intercept: randomFaults({ seed: 1, rate: 1, statuses: [503] }) })).endpoint)
    const error = await strict
      .send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(objects[0]?.name as string) }))
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } })
  })

  it('a random cut falls inside the body: the raw GET gets a strict prefix of it', async () => {
    const faults = randomFaults({ seed: 8, rate: 0, resetRate: 1 })
    const cutting = await proxy({ intercept: faults })
    const result = await rawGet(cutting.endpoint, path)
    expect(result.status).toBe(200)
    expect(result.complete).toBe(false)
    expect(result.body.byteLength).toBeLessThan(size)
    expect(Buffer.compare(result.body, data.subarray(0, result.body.byteLength))).toBe(0)
    expect(cutting.resets).toBe(1)
  })

  it('a resetAfterBytes function that returns a bad value is a 502 from the proxy', async () => {
    const faulty = await proxy({ intercept: () => ({ resetAfterBytes: () => -5 }) })
    const result = await rawGet(faulty.endpoint, path)
    expect(result.status).toBe(502)
    expect(result.body.toString()).toContain('ProxyError')
  })

  it('dropResponse: the server carries the write out, the client hears nothing; retried, it goes through', async () => {
    const key = s3.key('rf/dropped.txt')
    const dropping = await proxy({ intercept: (request) => (request.method === 'PUT' ? { dropResponse: true } : undefined) })
    const error = await clientFor(dropping.endpoint)
      .send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'written' }))
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBeUndefined()
    expect(dropping.drops).toBe(1)
    const read = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    expect(await read.Body?.transformToString()).toBe('written')

    // At a rate, with retries: the SDK sends the request again and gets its answer.
    const faults = randomFaults({ seed: 12, rate: 0, dropRate: 0.5 })
    const lossy = await proxy({ intercept: faults })
    const retrying = s3.s3.createClient({ endpoint: lossy.endpoint, ...retryQuickly({ maxAttempts: 30, baseDelayMs: 1 }) })
    clients.push(retrying)
    for (const { name, data } of objects.slice(0, 10)) {
      const response = await retrying.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(name) }))
      expect(Buffer.compare(Buffer.from((await response.Body?.transformToByteArray()) ?? []), data)).toBe(0)
    }
    expect(faults.injected.drops).toBeGreaterThan(0)
    expect(lossy.drops).toBe(faults.injected.drops)
  })

  it('retryQuickly gives up after maxAttempts, and does not retry what is not transient', async () => {
    const always = await proxy({ intercept: randomFaults({ seed: 1, rate: 1, statuses: [500] }) })
    const client = s3.s3.createClient({ endpoint: always.endpoint, ...retryQuickly({ maxAttempts: 4, baseDelayMs: 1 }) })
    clients.push(client)
    const error = await client
      .send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(objects[0]?.name as string) }))
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'InternalError', $metadata: { httpStatusCode: 500, attempts: 4 } })
    expect(always.requests).toHaveLength(4)

    const denied = await proxy({ intercept: randomFaults({ seed: 1, rate: 1, statuses: [403] }) })
    const other = s3.s3.createClient({ endpoint: denied.endpoint, ...retryQuickly({ maxAttempts: 4, baseDelayMs: 1 }) })
    clients.push(other)
    const refused = await other
      .send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(objects[0]?.name as string) }))
      .catch((e: unknown) => e)
    expect(refused).toMatchObject({ $metadata: { httpStatusCode: 403 } })
    expect(denied.requests).toHaveLength(1)
  })
})
