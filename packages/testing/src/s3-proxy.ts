/**
 * A loopback HTTP proxy in front of an S3 server, for tests: it can enforce `If-Match` /
 * `If-None-Match` on writes (PutObject and CompleteMultipartUpload) for servers that ignore them,
 * such as the embedded one, and it can script faults on chosen requests: answer them itself (a
 * 412, a 503, …) instead of forwarding them, hold them back for a while, or forward them and cut
 * the connection part-way through the response body. Point a client at `proxy.endpoint`.
 *
 * What `intercept` may return (or resolve to; it may be async):
 *
 * - `undefined`: forward the request unchanged.
 * - `{ status, code?, delayMs? }` ({@link ProxyAnswer}): do not forward; answer with this HTTP
 *   status and an S3 XML error body whose `Code` is `code` (default `InjectedError`), after
 *   `delayMs` milliseconds.
 * - `{ resetAfterBytes?, delayMs? }` ({@link ProxyFault}): forward the request, after waiting
 *   `delayMs` milliseconds when given. With `resetAfterBytes: n`, the upstream status and headers
 *   are sent as they came (`Content-Length` included), then exactly the first n bytes of the body,
 *   then the connection is destroyed once those bytes are handed to the kernel (so the client
 *   receives all of them; an RST would drop bytes in flight): the client sees the body end short
 *   of its length, as after a connection reset mid-body. `n` counts bytes of the body as the
 *   server sent it; 0 cuts right after the headers. A body of n bytes or fewer is sent whole and
 *   nothing is cut. `resetAfterBytes` may also be a function of the response's `Content-Length`
 *   that returns n once the server has answered.
 * - `{ dropResponse: true, delayMs? }`: forward the request, let the server carry it out and read
 *   its answer, then close the client's connection without sending any of it: the client cannot
 *   tell whether its write happened, and (as the AWS SDK does) may send it again.
 *
 * An async `intercept` holds its request until it settles, which lets a test act between two
 * requests deterministically (e.g. replace an object before a resumed read reaches the server).
 *
 * To look like a real S3 rather than loopback, `latencyMs` holds every request (or those a
 * function picks) that long before the proxy acts on it (a time to first byte), and
 * `bytesPerSecondPerConnection` caps each client connection's bandwidth with a token bucket of
 * its own, on response bodies and request bodies alike: N connections in parallel get N times the
 * bandwidth, as N connections to S3 do. The proxy records when each request arrived and was
 * answered (`requests`) and, for capped connections, when it let each slice of a body through
 * (`connections`).
 *
 * For faults at a rate rather than on chosen requests, `randomFaults({ seed, rate, resetRate, … })`
 * builds an `intercept` that answers a share of requests with 503 `SlowDown` or 500
 * `InternalError`, cuts a share of GET responses at a random point of their body, drops the
 * response of a share of requests the server carried out (`dropRate`), and delays some,
 * deterministically for a seed; its `injected` property counts what it did. A client that
 * goes through it needs retries to match: `retryQuickly({ maxAttempts })` gives client settings
 * that retry what the SDK retries, more times and with short pauses.
 *
 * @example
 * ```ts
 * import { randomFaults, retryQuickly, startLocalS3, startS3Proxy } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const proxy = await startS3Proxy({ target: s3, enforceConditionalWrites: true })   // target: s3 signs the proxy's own HEADs
 * const client = s3.createClient({ endpoint: proxy.endpoint })
 * // concurrent conditional writes through `client` now lose the race with HTTP 412, as on AWS S3
 * await proxy.stop()
 *
 * // Cut the first GET of big.bin after 5 MiB of its body, slow down every other request.
 * let gets = 0
 * const faulty = await startS3Proxy({
 *   target: s3.endpoint,
 *   intercept: (request) =>
 *     request.method === 'GET' && request.url.includes('/big.bin') && ++gets === 1
 *       ? { resetAfterBytes: 5 * 1024 * 1024 }
 *       : { delayMs: 20 },
 * })
 *
 * // 20 ms before every answer, 25 MB/s per connection: a client reading a big object with 8 ranged
 * // GETs at once gets up to 200 MB/s, one with a single GET 25 MB/s.
 * const remote = await startS3Proxy({ target: s3.endpoint, latencyMs: 20, bytesPerSecondPerConnection: 25e6 })
 *
 * // 5% of requests answered 503 or 500, 5% of GETs cut mid-body, never more than 3 faults in a
 * // row on one key; the same seed gives the same faults.
 * const faults = randomFaults({ seed: 7, rate: 0.05, resetRate: 0.05, maxInARow: 3 })
 * const lossy = await startS3Proxy({ target: s3.endpoint, intercept: faults })
 * const retrying = s3.createClient({ endpoint: lossy.endpoint, ...retryQuickly({ maxAttempts: 8 }) })
 * // ... use `retrying`, then look at faults.injected: { requests, errors, byStatus, resets, drops, delays, spared }
 * ```
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { pipeline, type Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { HeadObjectCommand, type S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { defaultBurstBytes, holdUntil, type PacedSlice, pacedStream, TokenBucket } from './bandwidth.js'
import { clientFor, type S3Connection } from './local-s3.js'

/** What the proxy saw of a request, for `intercept` and `requests`. */
export interface ProxiedRequest {
  method: string
  /** Path and query, e.g. `/bucket/key?uploadId=…`. */
  url: string
  headers: IncomingHttpHeaders
}

/**
 * A request as `requests` records it. Times are milliseconds on `performance.now()`'s clock in the
 * proxy's process (the same clock as a test's `performance.now()` in that process).
 */
export interface RecordedRequest extends ProxiedRequest {
  /** The client connection it came on: the `id` of its entry in `connections`, counted from 1. */
  connection: number
  /** When its head arrived. */
  receivedAt: number
  /** How long it was held by `latencyMs` before the proxy acted on it. */
  latencyMs: number
  /** When the proxy wrote the response's status and headers (undefined while it has not, or when the response was dropped). */
  respondedAt?: number
}

/**
 * What the bandwidth cap let through on one client connection. Each direction has a bucket of its
 * own, full when the connection opened, so by any time `t` the bytes in `response` (or `request`)
 * released at or before `t` add up to at most `burstBytes + bytesPerSecond × (t - openedAt) / 1000`.
 */
export interface ProxyConnection {
  /** Counted from 1, in the order the proxy accepted connections. */
  id: number
  /** When the proxy accepted it. */
  openedAt: number
  /** Response body bytes let through to the client, in order (empty without `bytesPerSecondPerConnection`). */
  response: PacedSlice[]
  /** Request body bytes let through to the server, in order (empty without `bytesPerSecondPerConnection`). */
  request: PacedSlice[]
}

/** An answer the proxy gives instead of forwarding. */
export interface ProxyAnswer {
  /** HTTP status of the answer, e.g. 503. */
  status: number
  /** S3 error code for the XML body, e.g. `PreconditionFailed`. Default `InjectedError`. */
  code?: string
  /** Milliseconds to wait before answering. Default 0. */
  delayMs?: number
}

/** A fault on a request that is forwarded (an object without `status`). */
export interface ProxyFault {
  /** Milliseconds to wait before forwarding the request. Default 0. */
  delayMs?: number
  /**
   * Send the response status, headers and only the first this many bytes of the body, then
   * destroy the connection (a reset mid-body). A non-negative integer; a body of this many
   * bytes or fewer is sent whole. Or a function of the response's `Content-Length` (undefined
   * for a body without one) that returns that integer once the server has answered, e.g. to cut
   * at a random point of the body. Default: the whole response.
   */
  resetAfterBytes?: number | ((contentLength: number | undefined) => number)
  /**
   * Forward the request and let the server carry it out, read its whole answer, then close the
   * client's connection without sending any of it: the client cannot tell whether a write
   * happened, as when a connection breaks just before the response. Default false.
   */
  dropResponse?: boolean
}

/** What `intercept` decides for a request: answer it, forward it with a fault, or (undefined) forward it. */
export type ProxyAction = ProxyAnswer | ProxyFault

/** Options for {@link startS3Proxy}. */
export interface S3ProxyOptions {
  /**
   * The S3 server to forward to: its connection (a `LocalS3` will do), or its URL, e.g.
   * `http://127.0.0.1:40123`. The proxy's own requests (the HEAD with which it checks a condition)
   * are signed with the connection's credentials; with a bare URL they go unsigned, which only a
   * server that does not check signatures (the embedded one) accepts.
   */
  target: string | S3Connection
  /**
   * Enforce `If-Match` / `If-None-Match` on PutObject and CompleteMultipartUpload: before
   * forwarding such a write, HEAD the object and answer 412 when the condition does not hold
   * (an ETag in `If-Match` matches quoted or bare). Writes to one key are serialized. For servers
   * that ignore these conditions; in front of one that enforces them, a write that passes here is
   * still checked by the server. Default false.
   */
  enforceConditionalWrites?: boolean
  /**
   * Called for each request before it is forwarded: return (or resolve to) an answer to send
   * instead, a fault to forward it with (a delay, a cut after n body bytes), or undefined to
   * forward it as is (see the module comment). Runs after conditional checks (when enabled) would
   * let it through; the request waits while a returned promise is pending.
   */
  intercept?: (request: ProxiedRequest) => ProxyAction | undefined | Promise<ProxyAction | undefined>
  /**
   * Keep every request in `requests`. Default true; turn it off for long runs (a soak), where the
   * log would grow by a kilobyte or so per request.
   */
  recordRequests?: boolean
  /**
   * Milliseconds each request is held after its head arrives, before the proxy acts on it
   * (conditional checks, `intercept`, forwarding): no byte of its response leaves sooner, as with a
   * real S3's time to first byte. A number for every request, or a function of the request that
   * returns one (0 for none), e.g. to slow down GETs only. Adds to `intercept`'s `delayMs`. Default 0.
   */
  latencyMs?: number | ((request: ProxiedRequest) => number)
  /**
   * Caps each client connection at this many bytes per second, on response bodies (to the client)
   * and on request bodies (to the server) separately, each direction with a token bucket of its
   * own: N connections in parallel get N times the bandwidth, as N connections to S3 do. Status
   * lines, headers and the proxy's own answers are not counted. Default: no cap.
   */
  bytesPerSecondPerConnection?: number
  /**
   * Bytes a capped connection may send at once after being idle: the size of its buckets, full
   * when it opens. Default 20 ms of `bytesPerSecondPerConnection`, at least 64 KiB.
   */
  burstBytesPerConnection?: number
}

/** A running proxy. */
export interface S3Proxy {
  /** Base URL to point clients at. */
  endpoint: string
  /** Every request seen, in order of arrival (empty with `recordRequests: false`). */
  requests: RecordedRequest[]
  /** Every client connection accepted, in order, with what the bandwidth cap let through (empty with `recordRequests: false`). */
  connections: ProxyConnection[]
  /** Conditional writes refused with 412 so far. */
  conflicts: number
  /** Responses cut by `resetAfterBytes` so far. */
  resets: number
  /** Responses withheld by `dropResponse` so far. */
  drops: number
  stop(): Promise<void>
}

/** Starts the proxy on a free loopback port. */
export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const connection = typeof options.target === 'string' ? undefined : options.target
  const target = new URL(connection?.endpoint ?? (options.target as string))
  // Signs the proxy's own requests; built on first use, destroyed by stop().
  let signer: S3Client | undefined
  const record = options.recordRequests ?? true
  const latencyOf = checkLatency(options.latencyMs ?? 0)
  const cap = checkCap(options.bytesPerSecondPerConnection, options.burstBytesPerConnection)
  const locks = new Map<string, Promise<void>>()
  const proxy: S3Proxy = { endpoint: '', requests: [], connections: [], conflicts: 0, resets: 0, drops: 0, stop: async () => {} }
  /** Each client connection's number, record and buckets. */
  const connections = new WeakMap<Socket, ConnectionState>()
  let connectionCount = 0

  const server = createServer((req, res) => {
    const receivedAt = performance.now()
    const connection = connectionOf(req.socket)
    const seen: RecordedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      connection: connection.record.id,
      receivedAt,
      latencyMs: 0,
    }
    if (record) proxy.requests.push(seen)
    noteResponseHead(res, seen)
    const latency = async () => {
      seen.latencyMs = checkLatencyMs(latencyOf(seen))
      await holdUntil(receivedAt + seen.latencyMs)
    }
    latency()
      .then(() => handle(req, res, seen))
      .catch((error: Error) => {
        if (!res.headersSent) answer(res, { status: 502, code: 'ProxyError' }, error.message)
        else res.destroy(error)
      })
  })
  server.on('connection', (socket: Socket) => connectionOf(socket))

  function connectionOf(socket: Socket): ConnectionState {
    let state = connections.get(socket)
    if (state) return state
    const recorded: ProxyConnection = { id: ++connectionCount, openedAt: performance.now(), response: [], request: [] }
    if (record) proxy.connections.push(recorded)
    state = {
      record: recorded,
      response: cap && new TokenBucket(cap.bytesPerSecond, cap.burstBytes),
      request: cap && new TokenBucket(cap.bytesPerSecond, cap.burstBytes),
    }
    connections.set(socket, state)
    return state
  }

  /** `body` as the connection's cap lets it through (itself without a cap); errors and early ends of either end both. */
  function paced(body: Readable, socket: Socket, direction: 'response' | 'request'): Readable {
    const state = connectionOf(socket)
    const bucket = state[direction]
    if (!bucket) return body
    const slices = record ? state.record[direction] : undefined
    return pipeline(body, pacedStream(bucket, slices), () => {})
  }

  async function handle(req: IncomingMessage, res: ServerResponse, seen: ProxiedRequest): Promise<void> {
    const conditional = options.enforceConditionalWrites && isConditionalWrite(seen)
    if (!conditional) return act(req, res, seen)
    // Serialize conditional writes per object, check the condition, then forward under the lock.
    const path = new URL(seen.url, 'http://x').pathname
    const previous = locks.get(path) ?? Promise.resolve()
    let release = () => {}
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    const chained = previous.then(() => mine)
    locks.set(path, chained)
    await previous
    try {
      const current = await headEtag(path)
      const ifMatch = header(seen.headers['if-match'])
      const ifNoneMatch = header(seen.headers['if-none-match'])
      const fails =
        (ifNoneMatch === '*' && current !== undefined) || (ifMatch !== undefined && (current === undefined || unquote(ifMatch) !== current))
      if (fails) {
        proxy.conflicts++
        req.resume()
        return void answer(res, { status: 412, code: 'PreconditionFailed' })
      }
      await act(req, res, seen)
    } finally {
      release()
      if (locks.get(path) === chained) locks.delete(path)
    }
  }

  /** Asks `intercept`, then answers, or forwards with the fault it asked for. */
  async function act(req: IncomingMessage, res: ServerResponse, seen: ProxiedRequest): Promise<void> {
    const action = await options.intercept?.(seen)
    const delayMs = action?.delayMs ?? 0
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new TypeError(`delayMs must be a non-negative number, not ${delayMs}`)
    if (delayMs > 0) await sleep(delayMs)
    if (action && 'status' in action && action.status !== undefined) {
      req.resume()
      return answer(res, action)
    }
    const fault = action as ProxyFault | undefined
    const resetAfterBytes = fault?.resetAfterBytes
    if (typeof resetAfterBytes === 'number') checkResetAfterBytes(resetAfterBytes)
    return forward(req, res, resetAfterBytes, fault?.dropResponse === true)
  }

  function forward(req: IncomingMessage, res: ServerResponse, resetAfter?: ProxyFault['resetAfterBytes'], drop = false): Promise<void> {
    return new Promise((resolve, reject) => {
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstreamRes) => {
          if (drop) {
            // The server has done its part; the client hears nothing of it.
            upstreamRes.on('error', reject)
            upstreamRes.on('end', () => {
              proxy.drops++
              res.socket?.destroy()
              resolve()
            })
            upstreamRes.resume()
            return
          }
          let resetAfterBytes: number | undefined
          try {
            resetAfterBytes = typeof resetAfter === 'function' ? checkResetAfterBytes(resetAfter(contentLengthOf(upstreamRes))) : resetAfter
          } catch (error) {
            upstreamRes.destroy()
            return reject(error)
          }
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
          upstreamRes.on('error', reject)
          const body = paced(upstreamRes, req.socket, 'response')
          if (resetAfterBytes === undefined) {
            body.pipe(res)
            body.on('end', () => resolve())
          } else {
            cutAfter(body, res, resetAfterBytes, resolve)
          }
        },
      )
      upstream.on('error', reject)
      paced(req, req.socket, 'request').pipe(upstream)
    })
  }

  /**
   * Sends the first `limit` body bytes of `upstreamRes`, then destroys the client connection once
   * they have been handed to the kernel, so the client receives exactly those bytes and then the
   * connection ends. A body of `limit` bytes or fewer goes through whole.
   */
  function cutAfter(upstreamRes: Readable, res: ServerResponse, limit: number, done: () => void): void {
    let sent = 0
    let cut = false
    let flushed: Promise<unknown> | undefined
    /** Writes a part; false when the client is behind (wait for 'drain'). */
    const send = (part: Uint8Array): boolean => {
      let ok = true
      flushed = new Promise((resolve) => {
        ok = res.write(part, resolve)
      })
      return ok
    }
    upstreamRes.on('data', (chunk: Buffer) => {
      if (cut) return
      const room = limit - sent
      if (chunk.byteLength <= room) {
        sent += chunk.byteLength
        if (!send(chunk)) {
          upstreamRes.pause()
          res.once('drain', () => upstreamRes.resume())
        }
        return
      }
      // The body goes on past the limit: send the rest of the allowance, then cut.
      cut = true
      upstreamRes.destroy()
      if (room > 0) send(chunk.subarray(0, room))
      if (flushed === undefined) {
        res.flushHeaders()
        const socket = res.socket
        flushed = socket ? new Promise((resolve) => socket.write(new Uint8Array(0), resolve)) : Promise.resolve()
      }
      void flushed.then(() => {
        proxy.resets++
        res.socket?.destroy()
        done()
      })
    })
    upstreamRes.on('end', () => {
      if (cut) return
      res.end()
      done()
    })
    // The client went away first: stop reading upstream.
    res.once('close', () => {
      if (cut || upstreamRes.readableEnded) return
      cut = true
      upstreamRes.destroy()
      done()
    })
  }

  async function headEtag(path: string): Promise<string | undefined> {
    if (connection) return signedHeadEtag(path, connection)
    return new Promise((resolve, reject) => {
      const head = request({ host: target.hostname, port: target.port, method: 'HEAD', path }, (headRes) => {
        headRes.resume()
        const etag = header(headRes.headers.etag)
        resolve(headRes.statusCode === 200 && etag ? unquote(etag) : undefined)
      })
      head.on('error', reject)
      head.end()
    })
  }

  /** HEAD of a path-style `/bucket/key`, signed: the current ETag unquoted, or undefined when there is no object. */
  async function signedHeadEtag(path: string, connection: S3Connection): Promise<string | undefined> {
    const [, bucket = '', ...key] = path.split('/')
    signer ??= clientFor(connection, { maxAttempts: 3 })
    try {
      const head = await signer.send(
        new HeadObjectCommand({ Bucket: decodeURIComponent(bucket), Key: key.map(decodeURIComponent).join('/') }),
      )
      return head.ETag ? unquote(head.ETag) : undefined
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined
      throw error
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.stop = () =>
    new Promise((resolve) => {
      signer?.destroy()
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return proxy
}

/** A client connection's record and, with a cap, its buckets (one per direction). */
interface ConnectionState {
  record: ProxyConnection
  response: TokenBucket | undefined
  request: TokenBucket | undefined
}

/** Sets `seen.respondedAt` when the response's status and headers are written. */
function noteResponseHead(res: ServerResponse, seen: RecordedRequest): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    seen.respondedAt ??= performance.now()
    return (writeHead as (...args: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}

function checkLatency(latency: number | ((request: ProxiedRequest) => number)): (request: ProxiedRequest) => number {
  if (typeof latency === 'function') return latency
  checkLatencyMs(latency)
  return () => latency
}

function checkLatencyMs(ms: number): number {
  if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError(`latencyMs must be a non-negative number, not ${ms}`)
  return ms
}

function checkCap(
  bytesPerSecond: number | undefined,
  burstBytes: number | undefined,
): { bytesPerSecond: number; burstBytes: number } | undefined {
  if (bytesPerSecond === undefined) {
    if (burstBytes !== undefined) throw new TypeError('burstBytesPerConnection needs bytesPerSecondPerConnection')
    return undefined
  }
  if (!(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0))
    throw new TypeError(`bytesPerSecondPerConnection must be a positive number, not ${bytesPerSecond}`)
  const burst = burstBytes ?? defaultBurstBytes(bytesPerSecond)
  if (!(Number.isSafeInteger(burst) && burst >= 1)) throw new TypeError(`burstBytesPerConnection must be a positive integer, not ${burst}`)
  return { bytesPerSecond, burstBytes: burst }
}

function checkResetAfterBytes(n: number): number {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new TypeError(`resetAfterBytes must be a non-negative integer, not ${n}`)
  return n
}

function contentLengthOf(response: IncomingMessage): number | undefined {
  const value = header(response.headers['content-length'])
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value)
}

/** PutObject (not UploadPart) or CompleteMultipartUpload carrying a condition. */
function isConditionalWrite(seen: ProxiedRequest): boolean {
  if (!seen.headers['if-match'] && !seen.headers['if-none-match']) return false
  const query = new URL(seen.url, 'http://x').searchParams
  if (seen.method === 'PUT') return !query.has('partNumber') && !seen.headers['x-amz-copy-source']
  return seen.method === 'POST' && query.has('uploadId')
}

function answer(res: ServerResponse, reply: ProxyAnswer, message = ''): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${reply.code ?? 'InjectedError'}</Code><Message>${message || 'answered by the test proxy'}</Message></Error>`
  res.writeHead(reply.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '')
}

// ------------------------------------------------------------------------------ faults at a rate

/** Options for {@link randomFaults}. */
export interface RandomFaultsOptions {
  /**
   * Seed of the pseudo-random sequence (mulberry32). The same seed gives the same decisions, in
   * the order the proxy sees requests: a run that sends its requests one at a time is replayed
   * exactly; with concurrent requests the same decisions fall on requests in arrival order.
   */
  seed: number
  /** Share of requests answered with an error status instead of being forwarded, from 0 to 1. Default 0.05. */
  rate?: number
  /**
   * Statuses to answer with, one picked at random each time: 503 is sent with the S3 code
   * `SlowDown`, 500 with `InternalError`, others with `InjectedError`. Default `[503, 500]`.
   */
  statuses?: readonly number[]
  /**
   * Share of forwarded requests (of those `resetOnly` accepts) whose response is cut mid-body,
   * from 0 to 1. Default 0.
   */
  resetRate?: number
  /**
   * Where a cut falls: after this many body bytes, or `'random'` (default): at a point drawn
   * uniformly within the body (its `Content-Length`; a body without one is cut right after the
   * headers). An empty body is never cut.
   */
  resetAfterBytes?: number | 'random'
  /**
   * Which forwarded requests may be cut. Default: GETs. A cut response to a write leaves the
   * client not knowing whether the write happened (the server did it): test that on purpose,
   * not at a rate.
   */
  resetOnly?: (request: ProxiedRequest) => boolean
  /**
   * Share of forwarded requests (of those `dropOnly` accepts) carried out by the server but whose
   * response is withheld, the connection closed (`dropResponse`), from 0 to 1: the client cannot
   * tell whether its write happened. `resetRate + dropRate` is at most 1. Default 0.
   */
  dropRate?: number
  /**
   * Which forwarded requests may have their response dropped. Default: all but
   * CreateMultipartUpload (whose lost answer leaves an upload that no client can know of, let
   * alone abort: a bucket lifecycle rule's job, not a client's).
   */
  dropOnly?: (request: ProxiedRequest) => boolean
  /** Share of forwarded requests held back first, from 0 to 1. Default 0. */
  delayRate?: number
  /** Longest hold, in milliseconds; each one is drawn uniformly up to it. Default 50. */
  maxDelayMs?: number
  /** Which requests may get any fault. Default: all. */
  only?: (request: ProxiedRequest) => boolean
  /**
   * At most this many faults (error answers, cuts, drops) in a row on one method and path; the next
   * request for it goes through clean. Use it to stay within what a client is documented to
   * absorb (e.g. 3 resumptions of one read). Default: no limit.
   */
  maxInARow?: number
}

/** What {@link randomFaults} has injected so far. */
export interface InjectedFaults {
  /** Requests it decided on (those `only` accepts). */
  requests: number
  /** Requests answered with an error status. */
  errors: number
  /** Error answers by HTTP status. */
  byStatus: Record<number, number>
  /** Responses forwarded with a cut planned (a cut point past the end of its body sends it whole; `proxy.resets` counts real cuts). */
  resets: number
  /** Requests forwarded with their response to be dropped (`proxy.drops` counts those done). */
  drops: number
  /** Requests held back. */
  delays: number
  /** Faults not injected because of `maxInARow`. */
  spared: number
}

/** An `intercept` for {@link startS3Proxy} that injects faults at a rate; see {@link randomFaults}. */
export interface RandomFaults {
  (request: ProxiedRequest): ProxyAction | undefined
  /** Counts of what was injected. */
  readonly injected: InjectedFaults
}

/**
 * An `intercept` that injects faults at a rate, deterministically for a seed: error answers (503
 * `SlowDown`, 500 `InternalError`), connection resets at a random point of the response body,
 * responses dropped after the server carried the request out, and delays. Its `injected`
 * property counts what it did.
 *
 * @example
 * ```ts
 * import { randomFaults, retryQuickly, startLocalS3, startS3Proxy } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const faults = randomFaults({ seed: 42, rate: 0.05, resetRate: 0.05, maxInARow: 3 })
 * const proxy = await startS3Proxy({ target: s3.endpoint, intercept: faults })
 * // A client that retries 503s and 500s often enough and without long pauses.
 * const client = s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 8 }) })
 * // ... run the code under test with `client` ...
 * console.log(faults.injected) // { requests, errors, byStatus: { 500: …, 503: … }, resets, drops, delays, spared }
 * ```
 */
export function randomFaults(options: RandomFaultsOptions): RandomFaults {
  const rate = checkRate('rate', options.rate ?? 0.05)
  const resetRate = checkRate('resetRate', options.resetRate ?? 0)
  const delayRate = checkRate('delayRate', options.delayRate ?? 0)
  const dropRate = checkRate('dropRate', options.dropRate ?? 0)
  checkRate('resetRate + dropRate', resetRate + dropRate)
  const statuses = options.statuses ?? [503, 500]
  if (statuses.length === 0 && rate > 0) throw new TypeError('statuses must not be empty')
  const maxDelayMs = options.maxDelayMs ?? 50
  const cut = options.resetAfterBytes ?? 'random'
  if (cut !== 'random') checkResetAfterBytes(cut)
  const resetOnly = options.resetOnly ?? ((request: ProxiedRequest) => request.method === 'GET')
  const dropOnly = options.dropOnly ?? ((request: ProxiedRequest) => !(request.method === 'POST' && /[?&]uploads(=|&|$)/.test(request.url)))
  const maxInARow = options.maxInARow ?? Number.POSITIVE_INFINITY
  const random = mulberry32(options.seed)
  const streaks = new Map<string, number>()
  const injected: InjectedFaults = { requests: 0, errors: 0, byStatus: {}, resets: 0, drops: 0, delays: 0, spared: 0 }

  const decide = (request: ProxiedRequest): ProxyAction | undefined => {
    if (options.only && !options.only(request)) return undefined
    injected.requests++
    // Always six draws per request, so that each request's decision depends only on its place in the sequence.
    const [errorDraw, statusDraw, resetDraw, cutDraw, delayDraw, delayAmount] = Array.from({ length: 6 }, random) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ]
    const wantsError = errorDraw < rate
    const wantsReset = !wantsError && resetDraw < resetRate && resetOnly(request)
    // Drops take the draws just above the resets' share, so that adding them leaves the other decisions of a seed as they were.
    const wantsDrop = !wantsError && !wantsReset && resetDraw >= resetRate && resetDraw < resetRate + dropRate && dropOnly(request)
    const wantsFault = wantsError || wantsReset || wantsDrop
    if (maxInARow !== Number.POSITIVE_INFINITY) {
      const streakKey = `${request.method} ${new URL(request.url, 'http://x').pathname}`
      const streak = streaks.get(streakKey) ?? 0
      if (wantsFault && streak >= maxInARow) {
        injected.spared++
        streaks.delete(streakKey)
        return undefined
      }
      if (wantsFault) streaks.set(streakKey, streak + 1)
      else streaks.delete(streakKey)
    }
    const delayMs = delayDraw < delayRate ? Math.floor(delayAmount * maxDelayMs) : 0
    if (delayMs > 0) injected.delays++
    if (wantsError) {
      const status = statuses[Math.floor(statusDraw * statuses.length)] as number
      injected.errors++
      injected.byStatus[status] = (injected.byStatus[status] ?? 0) + 1
      return { status, code: status === 503 ? 'SlowDown' : status === 500 ? 'InternalError' : 'InjectedError', delayMs }
    }
    if (wantsReset) {
      injected.resets++
      return {
        delayMs,
        resetAfterBytes: cut === 'random' ? (length: number | undefined) => (length === undefined ? 0 : Math.floor(cutDraw * length)) : cut,
      }
    }
    if (wantsDrop) {
      injected.drops++
      return { delayMs, dropResponse: true }
    }
    return delayMs > 0 ? { delayMs } : undefined
  }
  return Object.assign(decide, { injected })
}

/** Options for {@link retryQuickly}. */
export interface RetryQuicklyOptions {
  /** Attempts per request, the first included. Default 10. */
  maxAttempts?: number
  /** Upper bound of the first pause, in milliseconds; it doubles at each retry (full jitter). Default 10. */
  baseDelayMs?: number
  /** Longest pause, in milliseconds. Default 500. */
  maxDelayMs?: number
}

/**
 * S3 client settings that retry what the SDK's standard strategy retries (throttling such as 503
 * `SlowDown`, and transient errors: 500, 502, 503, 504, connection resets) up to `maxAttempts`
 * times, with short pauses and no retry quota, for clients that talk through injected faults in
 * tests. (The SDK's default makes 3 attempts and pauses up to a second or more after a
 * throttling error.) Spread it into the client configuration.
 *
 * @example
 * ```ts
 * const client = s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 8 }) })
 * ```
 */
export function retryQuickly(options: RetryQuicklyOptions = {}): Pick<S3ClientConfig, 'maxAttempts' | 'retryStrategy'> {
  const maxAttempts = options.maxAttempts ?? 10
  const baseDelayMs = options.baseDelayMs ?? 10
  const maxDelayMs = options.maxDelayMs ?? 500
  if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1))
    throw new TypeError(`maxAttempts must be a positive integer, not ${maxAttempts}`)
  const token = (count: number, delay: number) => ({ getRetryCount: () => count, getRetryDelay: () => delay })
  const retryStrategy = {
    mode: 'standard',
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (previous: { getRetryCount(): number }, info: { errorType: string }) => {
      const count = previous.getRetryCount() + 1
      if (count >= maxAttempts || (info.errorType !== 'THROTTLING' && info.errorType !== 'TRANSIENT')) {
        throw new Error('No retry token available')
      }
      return token(count, Math.floor(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (count - 1))))
    },
    recordSuccess: () => {},
  }
  return { maxAttempts, retryStrategy: retryStrategy as unknown as S3ClientConfig['retryStrategy'] }
}

/**
 * A seeded pseudo-random sequence (mulberry32, a small, fast 32-bit PRNG): numbers in [0, 1), the
 * same ones for the same seed on every machine. For workloads that must repeat exactly.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function checkRate(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0 && value <= 1)) throw new TypeError(`${name} must be between 0 and 1, not ${value}`)
  return value
}
