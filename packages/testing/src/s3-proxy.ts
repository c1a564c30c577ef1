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
 * This module is the server; its options and records are in `proxy-types.ts`, conditional-write
 * enforcement in `conditional-writes.ts`, option checks and header helpers in `proxy-http.ts`,
 * faults at a rate in `random-faults.ts`, `retryQuickly` in `retry-quickly.ts`, pacing in `bandwidth.ts`.
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
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { pipeline, type Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { holdUntil, pacedStream, TokenBucket } from './bandwidth.js'
import { conditionFails, EtagReader, isConditionalWrite, underLock } from './conditional-writes.js'
import { answer, checkCap, checkLatency, checkLatencyMs, checkResetAfterBytes, contentLengthOf, noteResponseHead } from './proxy-http.js'
import type { ProxiedRequest, ProxyConnection, ProxyFault, RecordedRequest, S3Proxy, S3ProxyOptions } from './proxy-types.js'

/** Starts the proxy on a free loopback port. */
export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const connection = typeof options.target === 'string' ? undefined : options.target
  const target = new URL(connection?.endpoint ?? (options.target as string))
  // Reads ETags for conditional writes, signing its HEADs with the target's credentials when it has them.
  const etags = new EtagReader(target, connection)
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
    await underLock(locks, path, async () => {
      const current = await etags.headEtag(path)
      if (conditionFails(seen.headers, current)) {
        proxy.conflicts++
        req.resume()
        return void answer(res, { status: 412, code: 'PreconditionFailed' })
      }
      await act(req, res, seen)
    })
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

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.stop = () =>
    new Promise((resolve) => {
      etags.destroy()
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
