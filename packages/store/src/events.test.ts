/**
 * The event hook (`onEvent`) against a real S3, faults put in on the wire by the test proxy: a body
 * cut mid-read is a `read-resumed` event at the byte the resumed GET asked for; a root update that
 * lost a race (a 412 over a root another writer changed) and a PutObject answered 409 are
 * `write-retried`; an `If-Match` form refused then accepted is a `fallback` and a
 * `capability-learned`; a single PUT refused as too large is both too; a key with `#` and no
 * archive behind it is an `ordinary-key` fallback. A hook that throws changes nothing.
 */
import { randomBytes } from 'node:crypto'
import type { S3Client } from '@aws-sdk/client-s3'
import { putBytes } from '@s3exchange/core/internals'
import { type ProxiedRequest, type ProxyAction, type S3Proxy, startS3Proxy } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rememberServerCapabilities, type S3ExchangeEvent } from './index.js'
import { S3ExchangeStore } from './store.js'

const MiB = 1024 * 1024
const s3 = useTestS3()
let clean: S3ExchangeStore
const proxies: S3Proxy[] = []
const clients: S3Client[] = []

beforeAll(() => {
  clean = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  await Promise.all(proxies.map((proxy) => proxy.stop()))
})

/** The path of a path-style request, decoded, without the bucket: the key. */
function keyOf(request: ProxiedRequest): string {
  const path = decodeURIComponent(new URL(request.url, 'http://x').pathname)
  return path.slice(s3.bucket.length + 2)
}
const isSinglePut = (request: ProxiedRequest) =>
  request.method === 'PUT' && !new URL(request.url, 'http://x').searchParams.has('partNumber')

/** A store on a new client through a proxy that acts on requests with `intercept`; its events, as they come. */
async function storeThrough(
  intercept: (request: ProxiedRequest) => ProxyAction | undefined | Promise<ProxyAction | undefined>,
  options: { enforceConditionalWrites?: boolean; hook?: (event: S3ExchangeEvent) => void } = {},
) {
  const proxy = await startS3Proxy({ target: s3.s3, intercept, enforceConditionalWrites: options.enforceConditionalWrites })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint })
  clients.push(client)
  const events: S3ExchangeEvent[] = []
  const onEvent = (event: S3ExchangeEvent) => {
    events.push(event)
    options.hook?.(event)
  }
  return { proxy, client, events, store: new S3ExchangeStore({ client, bucket: s3.bucket, onEvent }) }
}

/** Tells `client` the If-Match form its server honours (as a probe would), so that a test's conditional writes do not learn it. */
function knowsItsServer(client: S3Client): void {
  const form = testServer().capabilities.conditionalPut
  rememberServerCapabilities(client, { conditionalPut: form === 'none' ? 'both' : form })
}

describe('read-resumed', () => {
  for (const throwing of [false, true]) {
    it(`a body cut mid-read is resumed, and the event says where${throwing ? ' (a hook that throws changes nothing)' : ''}`, async () => {
      const key = s3.key(`resume/${throwing ? 'throwing' : 'plain'}.bin`)
      const data = randomBytes(2 * MiB)
      await clean.putObject(key, data)
      let gets = 0
      const { proxy, events, store } = await storeThrough(
        (request) => (request.method === 'GET' && keyOf(request) === key && gets++ === 0 ? { resetAfterBytes: 700_000 } : undefined),
        {
          hook: () => {
            if (throwing) throw new Error('a broken hook')
          },
        },
      )
      const read = Buffer.from(await (await store.getObject(key)).bytes())
      expect(read.equals(data)).toBe(true)
      const resumed = proxy.requests.filter((request) => request.method === 'GET' && keyOf(request) === key)[1]
      const from = Number(/^bytes=(\d+)-$/.exec(String(resumed?.headers.range))?.[1])
      expect(from).toBeGreaterThan(0)
      expect(from).toBeLessThanOrEqual(700_000)
      expect(events).toStrictEqual([{ type: 'read-resumed', key, offset: from, attempt: 1, reason: expect.any(String) }])
    })
  }
})

describe('write-retried', () => {
  it('a root update that lost a race (412: another writer changed the root) is retried, and says so', async () => {
    const root = s3.key('race/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'first.bin' }], { mode: 'append_parts' })
    let rootPuts = 0
    const { client, events, store } = await storeThrough(async (request) => {
      // The first write of the root: another writer appends first, and the write is refused as a
      // server that keeps conditions would refuse it (412).
      if (isSinglePut(request) && keyOf(request) === root && rootPuts++ === 0) {
        await clean.writeManifest(root, [{ kind: 'file', key: 'other.bin' }], { mode: 'append_parts' })
        return { status: 412, code: 'PreconditionFailed' }
      }
      return undefined
    })
    knowsItsServer(client)
    await store.writeManifest(root, [{ kind: 'file', key: 'mine.bin' }], { mode: 'append_parts' })
    expect(events).toStrictEqual([{ type: 'write-retried', key: root, attempt: 1, reason: 'lost-race', status: 412 }])
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).map((entry) => entry.key)).toEqual([
      'first.bin',
      'other.bin',
      'mine.bin',
    ])
  })

  it('a conditional PutObject answered 409 ConditionalRequestConflict is sent again, and says so', async () => {
    const root = s3.key('conflict/manifest.jsonl')
    let answered = 0
    const { events, store } = await storeThrough((request) =>
      isSinglePut(request) && keyOf(request) === root && answered++ === 0 ? { status: 409, code: 'ConditionalRequestConflict' } : undefined,
    )
    await store.writeManifest(root, [{ kind: 'file', key: 'a.bin' }], { mode: 'append_parts' })
    expect(events).toStrictEqual([{ type: 'write-retried', key: root, attempt: 1, reason: 'conflict', status: 409 }])
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(['a.bin'])
  })
})

describe('fallbacks and capabilities', () => {
  it('a quoted If-Match refused over an unchanged root: the bare form is tried, and learned', async () => {
    const root = s3.key('form/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'first.bin' }], { mode: 'append_parts' })
    // As Ceph RGW 16 does: a quoted If-Match on PutObject is refused although it matches.
    const { events, store } = await storeThrough((request) =>
      isSinglePut(request) && String(request.headers['if-match'] ?? '').startsWith('"')
        ? { status: 412, code: 'PreconditionFailed' }
        : undefined,
    )
    await store.writeManifest(root, [{ kind: 'file', key: 'second.bin' }], { mode: 'append_parts' })
    expect(events).toStrictEqual([
      { type: 'fallback', key: root, fallback: 'if-match-form', reason: expect.stringContaining('trying the bare form') },
      { type: 'capability-learned', capability: 'ifMatchForm', value: 'bare', key: root },
    ])
    // Learned once per client: the next write sends the bare form at once, and says nothing.
    await store.writeManifest(root, [{ kind: 'file', key: 'third.bin' }], { mode: 'append_parts' })
    expect(events).toHaveLength(2)
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).map((entry) => entry.key)).toEqual([
      'first.bin',
      'second.bin',
      'third.bin',
    ])
  })

  it('a single conditional PUT refused as too large: the size is learned, and a multipart upload sent instead', async () => {
    const key = s3.key('too-large/object.bin')
    const { client, events, store } = await storeThrough((request) =>
      isSinglePut(request) && keyOf(request) === key ? { status: 413, code: 'EntityTooLarge' } : undefined,
    )
    // Where completions keep their conditions (else the multipart write would be refused, nothing sent).
    rememberServerCapabilities(client, { conditionalComplete: true })
    const data = randomBytes(6 * MiB)
    await putBytes(store.context(), key, data, { partSize: 5 * MiB, ifNoneMatch: '*' })
    // Ceph RGW 16 answers a completion with an empty ETag: there, an etag-by-head fallback follows.
    const byHead = events.filter((event) => event.type === 'fallback' && event.fallback === 'etag-by-head')
    expect(byHead.length).toBeLessThanOrEqual(1)
    expect(events.filter((event) => !byHead.includes(event))).toStrictEqual([
      { type: 'capability-learned', capability: 'maxSinglePutRefused', value: 6 * MiB, key },
      { type: 'fallback', key, fallback: 'multipart-upload', reason: `the server refused a single PUT of ${6 * MiB} bytes as too large` },
    ])
    expect(Buffer.from(await (await clean.getObject(key)).bytes()).equals(data)).toBe(true)
  })

  it('a key with # and no archive behind it is read as an ordinary key, and says so', async () => {
    const key = s3.key('hash/not-an-archive#part.bin')
    await clean.putObject(key, Buffer.from('plain'))
    const { events, store } = await storeThrough(() => undefined)
    expect(Buffer.from(await (await store.getObject(key)).bytes()).toString()).toBe('plain')
    expect(events).toStrictEqual([
      { type: 'fallback', key, fallback: 'ordinary-key', reason: `no archive ${s3.key('hash/not-an-archive')}` },
    ])
  })
})
