/**
 * The CLI's progress line fed by the library's `onProgress`, and `--verbose`: on a terminal, `get`
 * draws files out of the total the library planned; a body cut mid-read by the test proxy prints
 * the library's `read-resumed` event on stderr, as a line, or as a JSON line with `--json`.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ProxiedRequest, type S3Proxy, startS3Proxy } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { S3ExchangeStore } from 's3exchange'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { main } from './main.js'
import { Output, type OutputStream } from './output.js'

const s3 = useTestS3()
let store: S3ExchangeStore
let work: string
const proxies: S3Proxy[] = []

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  work = await mkdtemp(join(tmpdir(), 's3x-progress-'))
})

afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.stop()))
  if (work) await rm(work, { recursive: true, force: true })
})

/** A stream that keeps what is written; a terminal when `tty`. */
class Captured extends EventEmitter implements OutputStream {
  readonly chunks: string[] = []
  readonly buffers: Buffer[] = []
  readonly isTTY: boolean
  readonly columns = 200
  constructor(tty: boolean) {
    super()
    this.isTTY = tty
  }
  write(chunk: string | Uint8Array): boolean {
    const bytes = Buffer.from(chunk)
    this.buffers.push(bytes)
    this.chunks.push(bytes.toString('utf8'))
    return true
  }
  get text(): string {
    return this.chunks.join('')
  }
}

/** Runs `s3x args` in this process against `endpoint` (default: the test server); its exit code, stdout and stderr. */
async function s3x(args: string[], options: { endpoint?: string; tty?: boolean } = {}) {
  const connection = inject('s3')
  const stdout = new Captured(false)
  const stderr = new Captured(options.tty ?? false)
  const env = {
    AWS_CONFIG_FILE: join(work, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
    S3_ENDPOINT_URL: options.endpoint ?? connection.endpoint,
    S3_AWS_ACCESS_KEY_ID: connection.credentials.accessKeyId,
    S3_AWS_SECRET_ACCESS_KEY: connection.credentials.secretAccessKey,
    S3_REGION: connection.region,
    S3_FORCE_PATH_STYLE: String(connection.forcePathStyle),
    S3_BUCKET: s3.bucket,
  }
  const code = await main(args, { output: new Output(stdout, stderr), env })
  return { code, out: Buffer.concat(stdout.buffers), err: stderr.text, frames: stderr.chunks }
}

describe('progress lines from the library', () => {
  it('Progress.report takes the figures and totals of a call; the line keeps its own total when the call has none', () => {
    const stderr = new Captured(true)
    const line = new Output(new Captured(false), stderr).progress('put', { total: 4, unit: 'files' })
    line.report({ loadedObjects: 1, loadedBytes: 2048, totalBytes: 4096 })
    expect(stderr.chunks.at(-1)).toBe('\r\x1b[Kput  1/4 files  [#####---------------]  2.0 KiB / 4.0 KiB')
    line.done()
    const get = new Output(new Captured(false), stderr).progress('get', { unit: 'files' })
    get.report({ loadedObjects: 2, loadedBytes: 10, totalObjects: 8 })
    expect(stderr.chunks.at(-1)).toBe('\r\x1b[Kget  2/8 files  [#####---------------]  10 B')
    get.done()
  })

  it('s3x get on a terminal counts files out of the total the library planned', async () => {
    const entries = []
    for (let i = 0; i < 5; i++) entries.push(await store.putObject(s3.key(`get/${i}.bin`), randomBytes(100)))
    await store.writeManifest(s3.key('get/manifest.jsonl'), entries)
    const run = await s3x(['get', s3.key('get/manifest.jsonl'), join(work, 'get')], { tty: true })
    expect(run.code, run.err).toBe(0)
    // The first report is drawn at once: one file of the 5 planned.
    expect(run.frames.some((frame) => frame.includes('get  1/5 files'))).toBe(true)
    expect(run.err).toContain('5 file(s) written')
  })
})

describe('--verbose', () => {
  it('prints a read resumed after a cut body, as a line and, with --json, as a JSON line', async () => {
    const key = s3.key('verbose/big.bin')
    const data = randomBytes(1024 * 1024)
    await store.putObject(key, data)
    let gets = 0
    const isObjectGet = (request: ProxiedRequest) => request.method === 'GET' && request.url.includes('verbose/big.bin')
    const proxy = await startS3Proxy({
      target: s3.s3,
      intercept: (request) => (isObjectGet(request) && gets++ % 2 === 0 ? { resetAfterBytes: 300_000 } : undefined),
    })
    proxies.push(proxy)

    const plain = await s3x(['cat', key, '--verbose'], { endpoint: proxy.endpoint })
    expect(plain.code, plain.err).toBe(0)
    expect(plain.out.equals(data)).toBe(true)
    expect(plain.err).toMatch(new RegExp(`^s3exchange: read of ${key} resumed at byte \\d+ \\(attempt 1\\): .+\\n$`))

    const json = await s3x(['cat', key, '--verbose', '--json'], { endpoint: proxy.endpoint })
    expect(json.code, json.err).toBe(0)
    const event = JSON.parse(json.err)
    expect(event).toMatchObject({ type: 'read-resumed', key, attempt: 1 })
    expect(event.offset).toBeGreaterThan(0)
    expect(event.offset).toBeLessThanOrEqual(300_000)

    const quiet = await s3x(['cat', key], { endpoint: proxy.endpoint })
    expect(quiet.code).toBe(0)
    expect(quiet.out.equals(data)).toBe(true)
    expect(quiet.err).toBe('')
  })
})
