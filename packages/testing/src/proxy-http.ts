/**
 * Small pieces of the S3 test proxy: checks of its options and of `intercept`'s answers, reading
 * request and response headers, the S3 XML error it answers with, and noting when a response's
 * head was written.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { defaultBurstBytes } from './bandwidth.js'
import type { ProxiedRequest, ProxyAnswer, RecordedRequest } from './proxy-types.js'

/** Sets `seen.respondedAt` when the response's status and headers are written. */
export function noteResponseHead(res: ServerResponse, seen: RecordedRequest): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    seen.respondedAt ??= performance.now()
    return (writeHead as (...args: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}

export function checkLatency(latency: number | ((request: ProxiedRequest) => number)): (request: ProxiedRequest) => number {
  if (typeof latency === 'function') return latency
  checkLatencyMs(latency)
  return () => latency
}

export function checkLatencyMs(ms: number): number {
  if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError(`latencyMs must be a non-negative number, not ${ms}`)
  return ms
}

export function checkCap(
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

export function checkResetAfterBytes(n: number): number {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new TypeError(`resetAfterBytes must be a non-negative integer, not ${n}`)
  return n
}

export function contentLengthOf(response: IncomingMessage): number | undefined {
  const value = header(response.headers['content-length'])
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value)
}

export function answer(res: ServerResponse, reply: ProxyAnswer, message = ''): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${reply.code ?? 'InjectedError'}</Code><Message>${message || 'answered by the test proxy'}</Message></Error>`
  res.writeHead(reply.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
