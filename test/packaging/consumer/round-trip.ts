/**
 * The round trip every packed consumer runs (test/packaging/consumers.ts copies this file into
 * each one and compiles it there: ESM with `nodenext`, ESM with `bundler`, CommonJS with
 * `nodenext`). It uses the consumer's own `@aws-sdk/client-s3`, through a loopback proxy that
 * records what reaches the server and cuts one response mid-body, against the S3 server named by
 * S3_ENDPOINT_URL (the embedded one the runner started, or Ceph RGW).
 *
 * Checked: the user's `S3Client` goes into `new S3ExchangeStore({ client })` (type-checked by the
 * consumer's `tsc`); put; a tar.gz shard; a manifest written whole, then appended to with a
 * conditional write that the SDK really sends (If-Match / If-None-Match on the wire); iteration of
 * loose objects and shard members with their bytes; one member read by virtual key with one ranged
 * GETs; a read whose connection is cut mid-body, resumed; typed errors (one class for `import` and
 * `require`); a zstd archive (read on a Node with zstd, an UnsupportedCompressionError naming the
 * archive without); a zstd shard written (read back by member on a Node with zstd, a
 * ShardWriteError naming the archive without, nothing uploaded); write options and an SSE-C key
 * (given as bytes) on the wire, as the SDK sends them. No top-level await, so the same file
 * compiles to CommonJS.
 */
import { strict as assert } from 'node:assert'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as zlib from 'node:zlib'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { ShardReadError as CoreShardReadError } from '@s3exchange/core'
import { type ProxiedRequest, startLocalS3, startS3Proxy } from '@s3exchange/testing'
import {
  type FileEntry,
  ObjectNotFoundError,
  S3ExchangeStore,
  ShardReadError,
  ShardWriteError,
  UnsupportedCompressionError,
} from 's3exchange'

async function bytesOf(body: { bytes(): Promise<Uint8Array> }): Promise<Buffer> {
  return Buffer.from(await body.bytes())
}

async function main(): Promise<string[]> {
  const done: string[] = []
  const s3 = await startLocalS3()
  const bucket = await s3.createBucket()
  const prefix = `consumers/${process.env.CONSUMER_LABEL ?? 'consumer'}-${randomBytes(4).toString('hex')}`
  let cutNextGetOf: string | undefined
  const proxy = await startS3Proxy({
    target: s3.endpoint,
    intercept: (request) => {
      if (request.method !== 'GET' || cutNextGetOf === undefined || !request.url.includes(cutNextGetOf)) return undefined
      cutNextGetOf = undefined
      return { resetAfterBytes: 1024 * 1024 }
    },
  })
  // The user's client, from the user's SDK: this line is what `tsc` checks against our types.
  const client = new S3Client({ endpoint: proxy.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true })
  const store = new S3ExchangeStore({ client, bucket })
  const sent = (method: string, key: string): ProxiedRequest[] =>
    proxy.requests.filter((r) => r.method === method && decodeURIComponent(new URL(r.url, 'http://x').pathname) === `/${bucket}/${key}`)
  try {
    // put
    const small = randomBytes(3000)
    const big = randomBytes(3 * 1024 * 1024)
    const a = await store.putObject(`${prefix}/loose/a.bin`, small, { id: 'a', meta: { n: 1 } })
    assert.equal(a.key, `${prefix}/loose/a.bin`)
    assert.equal(a.size_bytes, small.byteLength)
    const b = await store.putObject(`${prefix}/loose/big.bin`, big, { id: 'big' })
    done.push('putObject')

    // a tar.gz shard
    const members = [0, 1, 2].map((i) => ({
      member_path: `m${i}.txt`,
      id: `m${i}`,
      source: Buffer.from(`member ${i} `.repeat(100 * (i + 1))),
    }))
    const shard = await store.putShardArchive(`${prefix}/shards/shard-00000.tar.gz`, members)
    assert.equal(shard.entry.archive_key, `${prefix}/shards/shard-00000.tar.gz`)
    done.push('putShardArchive tar.gz')

    // manifests: one written whole; a root created by appending a part (If-None-Match: * on the
    // wire), then appended to again (If-Match: its ETag on the wire). An SDK that drops those
    // fields would make the root's update unconditional.
    const c: FileEntry = await store.putObject(`${prefix}/loose/c.txt`, Buffer.from('appended'), { id: 'c' })
    const flat = `${prefix}/flat.jsonl`
    await store.writeManifest(flat, [a, b, shard.entry, c])
    const flatKeys: string[] = []
    for await (const entry of store.iterManifestEntries(flat)) flatKeys.push(String(entry.kind === 'shard' ? entry.archive_key : entry.key))
    assert.deepEqual(flatKeys, [a.key, b.key, shard.entry.archive_key, c.key])
    const manifest = `${prefix}/manifest.jsonl`
    await store.writeManifest(manifest, [a, b], { mode: 'append_parts' })
    assert.equal(sent('PUT', manifest).at(-1)?.headers['if-none-match'], '*', "the new root's PUT carries If-None-Match: *")
    await store.writeManifest(manifest, [shard.entry, c], { mode: 'append_parts' })
    const update = sent('PUT', manifest).at(-1)?.headers['if-match']
    assert.ok(typeof update === 'string' && update.length > 2, `the root's update carries If-Match (it has ${update})`)
    done.push('writeManifest overwrite; append_parts twice (If-None-Match, then If-Match, sent)')

    // iterate loose objects and shard members, with their bytes, in manifest order
    const seen: Array<[string, Buffer]> = []
    for await (const { entry, body } of store.iterObjects(manifest, { expandShards: true }))
      seen.push([entry.key as string, await bytesOf(body)])
    const expected: Array<[string, Buffer]> = [
      [a.key, small],
      [b.key, big],
      ...members.map((m): [string, Buffer] => [`${shard.entry.archive_key}#${m.member_path}`, m.source]),
      [c.key, Buffer.from('appended')],
    ]
    assert.deepEqual(
      seen.map(([key]) => key),
      expected.map(([key]) => key),
    )
    for (const [i, [key, bytes]] of expected.entries()) assert.ok(seen[i]?.[1].equals(bytes), `bytes of ${key}`)
    done.push('iterObjects (loose + shard members)')

    // one member by virtual key: one ranged GET of the archive
    const getsBefore = sent('GET', shard.entry.archive_key).length
    const member = await bytesOf(await store.getObject(`${shard.entry.archive_key}#m1.txt`))
    assert.ok(member.equals(members[1]?.source as Buffer), 'bytes of the member read by virtual key')
    const memberGets = sent('GET', shard.entry.archive_key).slice(getsBefore)
    assert.ok(memberGets.length > 0 && memberGets.every((r) => typeof r.headers.range === 'string'), 'member read with ranged GETs')
    done.push(`ranged member read (${memberGets.length} ranged GET)`)

    // a read cut after 1 MiB resumes with Range + If-Match
    const resetsBefore = proxy.resets
    cutNextGetOf = b.key
    const resumed = await bytesOf(await store.getObject(b.key))
    assert.equal(proxy.resets, resetsBefore + 1, 'the proxy cut the read once')
    assert.ok(resumed.equals(big), 'bytes of the resumed read')
    const resume = sent('GET', b.key).at(-1)
    assert.match(String(resume?.headers.range), /^bytes=[1-9]\d*-/, 'the resumed GET asks for the rest')
    assert.ok(resume?.headers['if-match'], 'the resumed GET insists on the same version')
    done.push('resumable read after a cut')

    // write options and SSE-C through the user's SDK: the headers on the wire. The key is given as
    // bytes: every SDK of the range must send their base64 and MD5 (an SDK that encoded it twice
    // would send 60 characters, and servers would refuse the key).
    const sseKey = randomBytes(32)
    const sealed = new S3ExchangeStore({
      client,
      bucket,
      sseCustomerKey: { key: sseKey },
      writeOptions: { metadata: { team: 'asr' }, tagging: { a: 'b c' } },
    })
    const secret = randomBytes(2000)
    await sealed.putObject(`${prefix}/sse-c/secret.bin`, secret)
    assert.ok((await bytesOf(await sealed.getObject(`${prefix}/sse-c/secret.bin`))).equals(secret), 'bytes of the SSE-C object')
    const keyMd5 = createHash('md5').update(sseKey).digest('base64')
    for (const request of [...sent('PUT', `${prefix}/sse-c/secret.bin`), ...sent('GET', `${prefix}/sse-c/secret.bin`)]) {
      assert.equal(request.headers['x-amz-server-side-encryption-customer-algorithm'], 'AES256', `${request.method}: SSE-C algorithm`)
      assert.equal(request.headers['x-amz-server-side-encryption-customer-key'], sseKey.toString('base64'), `${request.method}: SSE-C key`)
      assert.equal(request.headers['x-amz-server-side-encryption-customer-key-md5'], keyMd5, `${request.method}: SSE-C key MD5`)
    }
    const put = sent('PUT', `${prefix}/sse-c/secret.bin`)[0]
    assert.equal(put?.headers['x-amz-meta-team'], 'asr', 'metadata sent')
    assert.equal(put?.headers['x-amz-tagging'], 'a=b%20c', 'tags sent')
    done.push('write options and an SSE-C key sent (PUT and GET)')

    // typed errors, one class whichever package (and module system) it comes from
    const missing = await store.getObject(`${prefix}/nope`).then(
      () => undefined,
      (error: unknown) => error,
    )
    assert.ok(missing instanceof ObjectNotFoundError && missing.key === `${prefix}/nope`, 'ObjectNotFoundError naming the key')
    assert.equal(ShardReadError, CoreShardReadError, 'one ShardReadError class for s3exchange and @s3exchange/core')
    done.push('typed errors')

    // the embedded server needs node:sqlite: without it, a clear error rather than a crash
    if (process.getBuiltinModule('node:sqlite') === undefined) {
      const refused = await startLocalS3({ env: {} }).then(
        () => undefined,
        (error: unknown) => error,
      )
      assert.match(String((refused as Error | undefined)?.message), /node:sqlite.*22\.13.*S3_ENDPOINT_URL/)
      done.push('startLocalS3 without node:sqlite: an error saying what to do')
    }

    // zstd: read where node:zlib has it, a typed error naming the archive where it does not
    const zstdKey = `${prefix}/shards/members.tar.zst`
    const zstdPath = process.env.ZSTD_ARCHIVE
    assert.ok(zstdPath, 'ZSTD_ARCHIVE names the .tar.zst fixture')
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: zstdKey, Body: readFileSync(zstdPath) }))
    const hasZstd = typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function'
    try {
      const names: string[] = []
      for await (const { entry, body } of store.getShard(zstdKey).iterArchiveMembers()) {
        names.push(`${entry.member_path}=${(await bytesOf(body)).toString()}`)
      }
      assert.ok(hasZstd, `Node ${process.version} has no zstd, yet the archive was read`)
      assert.deepEqual(names, ['a.txt=alpha', 'b/c.txt=gamma'])
      done.push('zstd archive read')
    } catch (error) {
      if (hasZstd || !(error instanceof UnsupportedCompressionError)) throw error
      assert.ok(error instanceof ShardReadError)
      assert.equal(error.archiveKey, zstdKey)
      assert.equal(error.compression, 'zstd')
      assert.match(error.message, new RegExp(`${zstdKey}.*zstd.*Node 22\\.15`))
      done.push('zstd archive: UnsupportedCompressionError naming it (no zstd in this Node)')
    }

    // writing zstd: a seekable .tar.zst where node:zlib has zstd, a typed error naming it where it does not
    const writtenKey = `${prefix}/shards/written.tar.zst`
    try {
      const shard = await store.putShardArchive(writtenKey, [
        { source: Buffer.from('zeta'), member_path: 'z.txt' },
        { source: Buffer.from('eta'), member_path: 'e/t.txt' },
      ])
      assert.ok(hasZstd, `Node ${process.version} has no zstd, yet a zstd shard was written`)
      assert.equal(shard.entry.compression, 'zstd')
      assert.equal(await (await store.getObject(`${writtenKey}#e/t.txt`)).text(), 'eta')
      done.push('zstd shard written, one member read back')
    } catch (error) {
      if (hasZstd || !(error instanceof ShardWriteError)) throw error
      assert.equal(error.archiveKey, writtenKey)
      assert.match(error.message, new RegExp(`${writtenKey}.*zstd.*Node 22\\.15`))
      assert.equal(await store.exists(writtenKey), false)
      done.push('zstd shard: ShardWriteError naming it, nothing written (no zstd in this Node)')
    }
  } finally {
    await store.deletePrefix(`${prefix}/`)
    client.destroy()
    await proxy.stop()
    await s3.stop()
  }
  return done
}

main().then(
  (done) => console.log(JSON.stringify({ node: process.version, done })),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  },
)
