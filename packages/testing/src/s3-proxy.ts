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
 *   nothing is cut.
 *
 * An async `intercept` holds its request until it settles, which lets a test act between two
 * requests deterministically (e.g. replace an object before a resumed read reaches the server).
 *
 * @example
 * ```ts
 * import { startLocalS3, startS3Proxy } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const proxy = await startS3Proxy({ target: s3.endpoint, enforceConditionalWrites: true })
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
 * ```
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** What the proxy saw of a request, for `intercept` and `requests`. */
export interface ProxiedRequest {
  method: string
  /** Path and query, e.g. `/bucket/key?uploadId=…`. */
  url: string
  headers: IncomingHttpHeaders
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
   * bytes or fewer is sent whole. Default: the whole response.
   */
  resetAfterBytes?: number
}

/** What `intercept` decides for a request: answer it, forward it with a fault, or (undefined) forward it. */
export type ProxyAction = ProxyAnswer | ProxyFault

/** Options for {@link startS3Proxy}. */
export interface S3ProxyOptions {
  /** The S3 server to forward to, e.g. `http://127.0.0.1:40123`. */
  target: string
  /** Enforce `If-Match` / `If-None-Match` on PutObject and CompleteMultipartUpload. Default false. */
  enforceConditionalWrites?: boolean
  /**
   * Called for each request before it is forwarded: return (or resolve to) an answer to send
   * instead, a fault to forward it with (a delay, a cut after n body bytes), or undefined to
   * forward it as is (see the module comment). Runs after conditional checks (when enabled) would
   * let it through; the request waits while a returned promise is pending.
   */
  intercept?: (request: ProxiedRequest) => ProxyAction | undefined | Promise<ProxyAction | undefined>
}

/** A running proxy. */
export interface S3Proxy {
  /** Base URL to point clients at. */
  endpoint: string
  /** Every request seen, in order. */
  requests: ProxiedRequest[]
  /** Conditional writes refused with 412 so far. */
  conflicts: number
  /** Responses cut by `resetAfterBytes` so far. */
  resets: number
  stop(): Promise<void>
}

/** Starts the proxy on a free loopback port. */
export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const target = new URL(options.target)
  const locks = new Map<string, Promise<void>>()
  const proxy: S3Proxy = { endpoint: '', requests: [], conflicts: 0, resets: 0, stop: async () => {} }

  const server = createServer((req, res) => {
    const seen: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }
    proxy.requests.push(seen)
    handle(req, res, seen).catch((error: Error) => {
      if (!res.headersSent) answer(res, { status: 502, code: 'ProxyError' }, error.message)
      else res.destroy(error)
    })
  })

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
    const resetAfterBytes = (action as ProxyFault | undefined)?.resetAfterBytes
    if (resetAfterBytes !== undefined && !(Number.isSafeInteger(resetAfterBytes) && resetAfterBytes >= 0)) {
      throw new TypeError(`resetAfterBytes must be a non-negative integer, not ${resetAfterBytes}`)
    }
    return forward(req, res, resetAfterBytes)
  }

  function forward(req: IncomingMessage, res: ServerResponse, resetAfterBytes?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
          upstreamRes.on('error', reject)
          if (resetAfterBytes === undefined) {
            upstreamRes.pipe(res)
            upstreamRes.on('end', () => resolve())
          } else {
            cutAfter(upstreamRes, res, resetAfterBytes, resolve)
          }
        },
      )
      upstream.on('error', reject)
      req.pipe(upstream)
    })
  }

  /**
   * Sends the first `limit` body bytes of `upstreamRes`, then destroys the client connection once
   * they have been handed to the kernel, so the client receives exactly those bytes and then the
   * connection ends. A body of `limit` bytes or fewer goes through whole.
   */
  function cutAfter(upstreamRes: IncomingMessage, res: ServerResponse, limit: number, done: () => void): void {
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

  function headEtag(path: string): Promise<string | undefined> {
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

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return proxy
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
