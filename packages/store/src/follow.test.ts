/**
 * `store.follow` on a real S3 server: it sees every part appended by 4 concurrent producers
 * (`append_parts`, conditional root writes enforced), each entry exactly once; it starts after a
 * cursor; it polls the root with `If-None-Match` and reads only the new bytes and new parts; it
 * ends cleanly when its signal fires; a root rewritten while followed is a `CursorMismatchError`.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { testServer, useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { CursorMismatchError, type EntryWithCursor, type FileEntry } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
// Producers race on the root: through a proxy that enforces conditional writes where the server does not (fauxqs).
const enforcing = !testServer().supports('conditional PutObject')
const via = useS3Proxy(s3, { enforceConditionalWrites: enforcing })
let store: S3ExchangeStore
let writer: S3ExchangeStore
let proxied: S3ExchangeStore

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  writer = new S3ExchangeStore({ client: enforcing ? via.client : s3.client, bucket: s3.bucket })
  proxied = new S3ExchangeStore({ client: via.client, bucket: s3.bucket })
})

const file = (key: string): FileEntry => ({ kind: 'file', key, size_bytes: 1 })

/** Follows `root` until `until(seen)` holds, then aborts; resolves to what was seen. */
async function followUntil(
  target: S3ExchangeStore,
  root: string,
  until: (seen: EntryWithCursor[]) => boolean,
  after?: string,
): Promise<EntryWithCursor[]> {
  const stop = new AbortController()
  const seen: EntryWithCursor[] = []
  for await (const item of target.follow(root, { after, pollIntervalMs: 20, signal: stop.signal })) {
    seen.push(item)
    if (until(seen)) stop.abort()
  }
  return seen
}

describe('follow', () => {
  it('sees every part appended by 4 concurrent producers, each entry exactly once', async () => {
    const root = s3.key('concurrent/manifest.jsonl')
    await store.writeManifest(root, [file(s3.key('concurrent/seed'))], { mode: 'append_parts' })
    const producers = 4
    const parts = 6
    const perPart = 3
    const expected = new Set([s3.key('concurrent/seed')])
    for (let p = 0; p < producers; p++) {
      for (let n = 0; n < parts; n++) for (let e = 0; e < perPart; e++) expected.add(s3.key(`concurrent/p${p}-n${n}-e${e}`))
    }
    const following = followUntil(store, root, (seen) => seen.length >= expected.size)
    const producing = Array.from({ length: producers }, async (_, p) => {
      for (let n = 0; n < parts; n++) {
        const entries = Array.from({ length: perPart }, (_, e) => file(s3.key(`concurrent/p${p}-n${n}-e${e}`)))
        await writer.writeManifest(root, entries, { mode: 'append_parts' })
        await sleep(Math.random() * 40)
      }
    })
    await Promise.all(producing)
    const seen = await following
    const keys = seen.map(({ entry }) => (entry as FileEntry).key)
    expect(keys).toHaveLength(expected.size)
    expect(new Set(keys)).toStrictEqual(expected)
    // What follow saw is the manifest's order: a fresh read gives the same sequence.
    const reread: string[] = []
    for await (const entry of store.iterManifestEntries(root)) reread.push((entry as FileEntry).key)
    expect(keys).toStrictEqual(reread)
  })

  it('starts after a cursor, polls with If-None-Match and reads only new bytes and new parts', async () => {
    const root = s3.key('after/manifest.jsonl')
    await store.writeManifest(root, [file(s3.key('after/a')), file(s3.key('after/b'))], { mode: 'append_parts' })
    const [first] = await followUntil(store, root, (seen) => seen.length >= 1)
    const parts: string[] = []
    for await (const entry of store.iterManifestEntries(root, { resolveRefs: false })) parts.push((entry as { key: string }).key)
    const mark = via.proxy.requests.length
    const stop = new AbortController()
    const seen: string[] = []
    const following = (async () => {
      for await (const { entry } of proxied.follow(root, { after: first?.cursor, pollIntervalMs: 20, signal: stop.signal })) {
        seen.push((entry as FileEntry).key)
        if (seen.length === 3) stop.abort()
      }
    })()
    const path = (url: string) => decodeURIComponent(url.split('?')[0] as string)
    const requests = () => via.proxy.requests.slice(mark).filter((r) => r.method === 'GET')
    const pollsOf = () => requests().filter((r) => path(r.url).endsWith(`/${root}`) && r.headers['if-none-match'] !== undefined)
    while (pollsOf().length < 3) await sleep(20) // some polls of an unchanged root
    await store.writeManifest(root, [file(s3.key('after/c')), file(s3.key('after/d'))], { mode: 'append_parts' })
    await following
    expect(seen).toStrictEqual([s3.key('after/b'), s3.key('after/c'), s3.key('after/d')])
    const gets = requests()
    const polls = pollsOf()
    expect(polls.length).toBeGreaterThan(2)
    expect(polls.every((r) => /^bytes=\d+-$/.test(String(r.headers.range)))).toBe(true)
    // The first part, before the cursor's, is never read; the new part is read once.
    expect(gets.filter((r) => path(r.url).endsWith(`/${parts[0]}`))).toHaveLength(1) // the cursor's own part, from its line on
    expect(gets.filter((r) => path(r.url).endsWith(`/${parts[0]}`))[0]?.headers.range).toBeDefined()
    const newParts = gets.filter((r) => /part-.*\.jsonl$/.test(path(r.url)) && !path(r.url).endsWith(`/${parts[0]}`))
    expect(newParts).toHaveLength(1)
  })

  it('ends cleanly when the signal fires while it waits', async () => {
    const root = s3.key('quiet/manifest.jsonl')
    await store.writeManifest(root, [file(s3.key('quiet/a'))])
    const stop = new AbortController()
    setTimeout(() => stop.abort(), 150)
    const seen: string[] = []
    for await (const { entry } of store.follow(root, { pollIntervalMs: 20, signal: stop.signal })) seen.push((entry as FileEntry).key)
    expect(seen).toStrictEqual([s3.key('quiet/a')])
  })

  it('a root rewritten while followed is a CursorMismatchError naming it', async () => {
    const root = s3.key('rewritten/manifest.jsonl')
    await store.writeManifest(root, [file(s3.key('rewritten/a')), file(s3.key('rewritten/b'))])
    const stop = new AbortController()
    const seen: string[] = []
    const following = (async () => {
      for await (const { entry } of store.follow(root, { pollIntervalMs: 20, signal: stop.signal })) {
        seen.push((entry as FileEntry).key)
        if (seen.length > 2) stop.abort() // a third entry: the rewrite was taken for an append (the test fails below)
      }
    })()
    await sleep(150)
    await store.writeManifest(root, [file(s3.key('rewritten/x')), file(s3.key('rewritten/b')), file(s3.key('rewritten/c'))])
    const error = await following.then(
      () => undefined,
      (e: unknown) => e,
    )
    stop.abort()
    expect(seen).toStrictEqual([s3.key('rewritten/a'), s3.key('rewritten/b')])
    expect(error).toBeInstanceOf(CursorMismatchError)
    expect(error).toMatchObject({ key: root, reason: 'rewritten' })
  })
})
