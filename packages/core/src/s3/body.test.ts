import { createHash, randomBytes } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  BodyConsumedError,
  IntegrityError,
  ObjectChangedError,
  ObjectNotFoundError,
  S3ExchangeError,
  S3RequestError,
  ShardReadError,
} from '../format/errors.js'
import { expectationOf, ObjectBody } from './body.js'
import { getObjectBody } from './object-source.js'

const enc = (text: string) => new TextEncoder().encode(text)

/** A body over a PassThrough, recording what `release` was told. */
function streamed(wrap: (error: Error) => Error = (error) => new S3RequestError('GetObject', 'k', error)) {
  const source = new PassThrough()
  const released: boolean[] = []
  const body = ObjectBody.fromSource({ key: 'k', size: 5 }, source, { wrapError: wrap, release: (complete) => released.push(complete) })
  return { source, body, released }
}

describe('ObjectBody.fromBytes', () => {
  it('bytes() gives the bytes, text() decodes UTF-8', async () => {
    const body = ObjectBody.fromBytes({ key: 'a' }, enc('héllo'))
    expect(body.buffered).toBe(true)
    expect(body.size).toBe(6)
    expect(body.key).toBe('a')
    expect(Buffer.from(await body.bytes()).toString()).toBe('héllo')
    expect(await ObjectBody.fromBytes({ key: 'a' }, enc('😀 ü')).text()).toBe('😀 ü')
  })

  it('keeps the info it was given', () => {
    const body = ObjectBody.fromBytes(
      { key: 'a.tar#m', size: 3, etag: 'e', contentType: 'text/plain', archiveKey: 'a.tar', memberPath: 'm' },
      enc('abc'),
    )
    expect(body).toMatchObject({ key: 'a.tar#m', size: 3, etag: 'e', contentType: 'text/plain', archiveKey: 'a.tar', memberPath: 'm' })
  })

  it('is also a Readable of the bytes', async () => {
    const body = ObjectBody.fromBytes({ key: 'a' }, enc('stream me'))
    const chunks: Buffer[] = []
    for await (const chunk of body) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).toString()).toBe('stream me')
  })

  it('an empty body reads as 0 bytes', async () => {
    expect((await ObjectBody.fromBytes({ key: 'e' }, new Uint8Array(0)).bytes()).byteLength).toBe(0)
    const chunks: unknown[] = []
    for await (const chunk of ObjectBody.fromBytes({ key: 'e' }, new Uint8Array(0))) chunks.push(chunk)
    expect(chunks).toHaveLength(0)
  })

  it('abandon() makes a later bytes() reject with BodyConsumedError, saying why', async () => {
    const body = ObjectBody.fromBytes({ key: 'a' }, enc('abc'))
    body.abandon()
    const error = await body.bytes().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BodyConsumedError)
    expect(error).toMatchObject({ key: 'a', reason: 'released' })
    expect((error as Error).message).toMatch(/not read before the iteration moved on/)
  })
})

describe('ObjectBody.fromSource', () => {
  it('streams the source; release is told the body was complete', async () => {
    const { source, body, released } = streamed()
    const reading = body.bytes()
    source.write(enc('he'))
    source.write(enc('llo'))
    source.end()
    expect(Buffer.from(await reading).toString()).toBe('hello')
    await tick()
    expect(released).toStrictEqual([true])
    expect(body.buffered).toBe(false)
  })

  it('text() decodes a multi-byte character split across chunks', async () => {
    const { source, body } = streamed()
    const bytes = enc('ü😀')
    const reading = body.text()
    for (const byte of bytes) source.write(Buffer.from([byte]))
    source.end()
    expect(await reading).toBe('ü😀')
  })

  it('does not pull from the source until someone reads', async () => {
    const { source, body } = streamed()
    source.write(enc('abc'))
    await tick()
    await tick()
    // The source is paused: the data waits there, not in the body.
    expect(source.readableLength).toBe(3)
    expect(body.readableLength).toBe(0)
    source.end()
    expect(Buffer.from(await body.bytes()).toString()).toBe('abc')
  })

  it('a source error while nobody reads does not crash, and comes out typed at the next read', async () => {
    const { source, body, released } = streamed(
      (error) => new ShardReadError('cut', { archiveKey: 'a.tar', memberPath: 'm', cause: error }),
    )
    const cause = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    source.destroy(cause)
    await tick()
    await tick()
    // No 'error' event was emitted (it would be unhandled here): the body holds it.
    expect(body.errored).toBeNull()
    expect(body.destroyed).toBe(false)
    const error = await body.bytes().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).archiveKey).toBe('a.tar')
    expect((error as ShardReadError).memberPath).toBe('m')
    expect((error as ShardReadError).cause).toBe(cause)
    await tick()
    expect(released).toStrictEqual([false])
  })

  it('a source error while someone reads rejects that read, typed', async () => {
    const { source, body } = streamed()
    const reading = body.bytes()
    source.write(enc('ab'))
    await tick()
    source.destroy(new Error('boom'))
    const error = await reading.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(S3RequestError)
    expect((error as S3RequestError).key).toBe('k')
    expect((error as Error).message).toContain('boom')
  })

  it('abandon() releases the source incomplete and makes bytes() reject', async () => {
    const { source, body, released } = streamed()
    source.write(enc('abc'))
    body.abandon()
    await tick()
    expect(released).toStrictEqual([false])
    const error = await body.bytes().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BodyConsumedError)
    expect(error).toMatchObject({ key: 'k', reason: 'released' })
  })

  it('abandon() while a bytes() is pending rejects that bytes() (no hang)', async () => {
    const { source, body, released } = streamed()
    source.write(enc('ab'))
    let settled: unknown = 'pending'
    body.bytes().then(
      () => {
        settled = 'resolved'
      },
      (error: unknown) => {
        settled = error
      },
    )
    await tick()
    body.abandon()
    for (let i = 0; i < 5; i++) await tick()
    expect(settled).toBeInstanceOf(BodyConsumedError)
    expect(settled).toMatchObject({ reason: 'released' })
    expect(released).toStrictEqual([false])
  })

  it('destroy() while a bytes() is pending rejects that bytes() (no hang)', async () => {
    const { source, body } = streamed()
    source.write(enc('ab'))
    let settled: unknown = 'pending'
    body.bytes().then(
      () => {
        settled = 'resolved'
      },
      (error: unknown) => {
        settled = error
      },
    )
    await tick()
    body.destroy()
    for (let i = 0; i < 5; i++) await tick()
    expect(settled).toBeInstanceOf(Error)
  })

  it('abandon() does nothing to a body read to the end', async () => {
    const { source, body, released } = streamed()
    const reading = body.bytes()
    source.end(enc('abc'))
    await reading
    body.abandon()
    await tick()
    expect(released).toStrictEqual([true])
  })

  it('a source error after the body was let go is swallowed', async () => {
    const { source, body, released } = streamed()
    body.destroy()
    await tick()
    expect(released).toStrictEqual([false])
    source.destroy(new Error('late'))
    await tick()
    await tick()
    expect(body.errored).toBeNull()
  })
})

describe('ObjectBody.expect', () => {
  const hex = (text: string) => createHash('sha256').update(text).digest('hex')

  it('bytes that match pass, buffered or streamed, through bytes() and through reading the stream', async () => {
    expect(
      Buffer.from(
        await ObjectBody.fromBytes({ key: 'a' }, enc('hello'))
          .expect({ size: 5, sha256: hex('hello') })
          .bytes(),
      ).toString(),
    ).toBe('hello')
    const { source, body } = streamed()
    body.expect({ size: 5, sha256: hex('hello').toUpperCase() })
    source.write(enc('hel'))
    source.end(enc('lo'))
    const chunks: Buffer[] = []
    for await (const chunk of body) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).toString()).toBe('hello')
  })

  it.each([
    ['a different SHA-256', { sha256: hex('hellO') }, 'sha256', hex('hellO'), hex('hello')],
    ['a different size', { size: 6, sha256: hex('hello') }, 'size_bytes', 6, 5],
    ['a sha256 that is not hex', { sha256: 'not-a-digest' }, 'sha256', 'not-a-digest', hex('hello')],
  ])(
    '%s: bytes() rejects with IntegrityError naming the key, the field, the expected and the actual value',
    async (_name, expected, field, want, got) => {
      for (const make of [
        () => ObjectBody.fromBytes({ key: 'dir/k.bin' }, enc('hello')),
        () => {
          const source = new PassThrough()
          source.end(enc('hello'))
          return ObjectBody.fromSource({ key: 'dir/k.bin' }, source, { wrapError: (error) => error, release: () => {} })
        },
      ]) {
        const error = await make()
          .expect(expected)
          .bytes()
          .then(
            () => undefined,
            (caught: unknown) => caught,
          )
        expect(error).toBeInstanceOf(IntegrityError)
        expect(error).toBeInstanceOf(S3ExchangeError)
        expect(error).toMatchObject({ key: 'dir/k.bin', field, expected: want, actual: got })
        expect((error as Error).message).toContain('dir/k.bin')
      }
    },
  )

  it('a mismatch fails a streaming read too: the stream errors instead of ending', async () => {
    const { source, body } = streamed()
    body.expect({ sha256: hex('other') })
    source.write(enc('hel'))
    let ended = false
    body.on('end', () => {
      ended = true
    })
    const error = await (async () => {
      for await (const _chunk of body) if (!source.writableEnded) source.end(enc('lo'))
    })().then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(IntegrityError)
    expect(ended).toBe(false)
  })

  it('expectationOf takes size_bytes and sha256 when they have the right type, and nothing else', () => {
    expect(expectationOf({ size_bytes: 3, sha256: 'ab' })).toEqual({ size: 3, sha256: 'ab' })
    expect(expectationOf({ size_bytes: null, sha256: 7 })).toEqual({ size: undefined, sha256: undefined })
    const body = ObjectBody.fromBytes({ key: 'a' }, enc('abc'))
    expect(body.expect(expectationOf({}))).toBe(body)
  })
})

describe('getObjectBody (real S3)', () => {
  const s3 = useTestS3()
  let faulty: S3Client
  /** The response bodies of faulty's GETs, as the HTTP layer handed them over. */
  const wires: PassThrough[] = []

  beforeAll(async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key('body/a.txt'), Body: 'hello body', ContentType: 'text/plain' }),
    )
    faulty = s3.s3.createClient()
    // Fault injection at the HTTP layer: each GetObject response body is routed through a
    // PassThrough that the test can cut (destroy with a connection error) whenever it likes.
    faulty.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        const response = result.response as { body?: unknown }
        if (context.commandName === 'GetObjectCommand' && response.body) {
          const original = response.body as Readable
          const wire = new PassThrough()
          original.on('error', (error) => wire.destroy(error))
          original.pipe(wire)
          wire.on('close', () => original.destroy())
          response.body = wire
          wires.push(wire)
        }
        return result
      },
      { step: 'deserialize', priority: 'low', name: 'test-cuttable-bodies' },
    )
  })

  afterEach(() => {
    wires.length = 0
  })

  it('reads an object, with its size, etag and content type', async () => {
    const body = await getObjectBody({ client: s3.client, bucket: s3.bucket }, s3.key('body/a.txt'))
    expect(body.key).toBe(s3.key('body/a.txt'))
    expect(body.size).toBe(10)
    expect(body.contentType).toBe('text/plain')
    expect(body.etag).toMatch(/^[^"]+$/)
    expect(await body.text()).toBe('hello body')
  })

  it('a missing key is ObjectNotFoundError naming the key', async () => {
    const error = await getObjectBody({ client: s3.client, bucket: s3.bucket }, s3.key('body/missing')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(s3.key('body/missing'))
  })

  it('a connection cut while nobody reads does not crash; without resumption the next read rejects with S3RequestError', async () => {
    const body = await getObjectBody({ client: faulty, bucket: s3.bucket }, s3.key('body/a.txt'), { resumeAttempts: 0 })
    expect(wires).toHaveLength(1)
    wires[0]?.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
    await tick()
    await tick()
    expect(body.errored).toBeNull()
    const error = await body.bytes().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(S3RequestError)
    expect((error as S3RequestError).key).toBe(s3.key('body/a.txt'))
    expect((error as S3RequestError).operation).toBe('GetObject')
  })

  // A body big enough that most of it is still on the wire when the test cuts it (a small one is
  // read ahead whole by the SDK's checksum stream before the cut).
  const big = randomBytes(4 * 1024 * 1024)

  it('by default, a connection cut mid-body is resumed: the whole body comes back', async () => {
    const key = s3.key('body/big.bin')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: big }))
    const body = await getObjectBody({ client: faulty, bucket: s3.bucket }, key)
    expect(wires).toHaveLength(1)
    wires[0]?.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
    expect(Buffer.compare(Buffer.from(await body.bytes()), big)).toBe(0)
    // One more GET, for the rest of the same version.
    expect(wires).toHaveLength(2)
  })

  it('a resumed read of an object replaced in between fails with ObjectChangedError, never a splice', async () => {
    const key = s3.key('body/changing.bin')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: big }))
    const body = await getObjectBody({ client: faulty, bucket: s3.bucket }, key)
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: randomBytes(big.length) }))
    wires[0]?.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
    const error = await body.bytes().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ObjectChangedError)
    expect((error as ObjectChangedError).key).toBe(key)
  })

  it('abandon() closes the connection and a later bytes() rejects', async () => {
    const body = await getObjectBody({ client: faulty, bucket: s3.bucket }, s3.key('body/a.txt'))
    body.abandon()
    await tick()
    expect(wires[0]?.destroyed).toBe(true)
    const error = await body.bytes().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BodyConsumedError)
    expect(error).toMatchObject({ key: body.key, reason: 'released' })
  })
})
