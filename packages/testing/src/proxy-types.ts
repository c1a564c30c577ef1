/**
 * What the S3 test proxy (`startS3Proxy`) takes and gives: its options, what `intercept` sees of a
 * request and may decide for it (an answer, a fault), what it records of requests and client
 * connections, and the running proxy. See `s3-proxy.ts` for how it behaves.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { PacedSlice } from './bandwidth.js'
import type { S3Connection } from './local-s3.js'

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
