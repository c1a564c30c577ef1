/**
 * prepareSource: the size of bytes, files and streams, checked against the size the caller
 * gives, and streams of unknown size read into memory only up to a limit. Every refusal is an
 * InvalidSourceError naming the key.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { InvalidSourceError } from '../format/errors.js'
import { type PreparedSource, prepareSource } from './data-source.js'

const dir = mkdtempSync(join(tmpdir(), 's3x-sources-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const KEY = 'ds/clip.wav'

async function readAll(source: PreparedSource): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of source.open()) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

async function invalid(run: () => Promise<unknown>, key = KEY): Promise<InvalidSourceError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(InvalidSourceError)
  expect((error as InvalidSourceError).key).toBe(key)
  expect((error as Error).message).toContain(key)
  return error as InvalidSourceError
}

async function* chunksOf(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size)
}

describe('bytes', () => {
  it('have their length as size and are kept in memory', async () => {
    const data = randomBytes(1000)
    const source = await prepareSource(data, { key: KEY })
    expect(source.size).toBe(1000)
    expect(source.bytes).toBe(data)
    expect((await readAll(source)).equals(data)).toBe(true)
  })

  it('a matching size_bytes is fine; a different one is InvalidSourceError naming the key', async () => {
    expect((await prepareSource(Buffer.from('abc'), { key: KEY, sizeHint: 3 })).size).toBe(3)
    expect((await prepareSource(Buffer.from('abc'), { key: KEY, sizeHint: null })).size).toBe(3)
    const error = await invalid(() => prepareSource(Buffer.from('abc'), { key: KEY, sizeHint: 4 }))
    expect(error.message).toMatch(/size_bytes is 4 but the data has 3 bytes/)
  })
})

describe('a file path', () => {
  const path = join(dir, 'clip.wav')
  const data = randomBytes(3 * 1024 * 1024 + 17)
  writeFileSync(path, data)

  it('takes its size from stat and streams the file', async () => {
    const source = await prepareSource(path, { key: KEY })
    expect(source.size).toBe(data.byteLength)
    expect(source.bytes).toBeUndefined()
    expect((await readAll(source)).equals(data)).toBe(true)
  })

  it('can be opened once', async () => {
    const source = await prepareSource(path, { key: KEY })
    await readAll(source)
    await invalid(async () => source.open())
  })

  it('a size_bytes different from the file size is InvalidSourceError naming the key and the file', async () => {
    expect((await prepareSource(path, { key: KEY, sizeHint: data.byteLength })).size).toBe(data.byteLength)
    const error = await invalid(() => prepareSource(path, { key: KEY, sizeHint: 10 }))
    expect(error.message).toContain(path)
    expect(error.message).toContain(String(data.byteLength))
  })

  it('a missing file is InvalidSourceError with the cause', async () => {
    const missing = join(dir, 'missing.wav')
    const error = await invalid(() => prepareSource(missing, { key: KEY }))
    expect(error.message).toContain(missing)
    expect((error.cause as { code?: string }).code).toBe('ENOENT')
  })

  it('a directory is InvalidSourceError', async () => {
    const error = await invalid(() => prepareSource(dir, { key: KEY }))
    expect(error.message).toMatch(/not a regular file/)
  })

  it('a file that grows after stat fails when read past its size', async () => {
    const growing = join(dir, 'growing.bin')
    writeFileSync(growing, Buffer.alloc(100))
    const source = await prepareSource(growing, { key: KEY })
    writeFileSync(growing, Buffer.alloc(200))
    const error = await invalid(() => readAll(source))
    expect(error.message).toMatch(/longer than its size_bytes \(100\)/)
  })
})

describe('a stream with a size', () => {
  const data = randomBytes(100_000)

  it('passes through when the size is right', async () => {
    const source = await prepareSource(chunksOf(data, 7000), { key: KEY, sizeHint: data.byteLength })
    expect(source.size).toBe(data.byteLength)
    expect(source.bytes).toBeUndefined()
    expect((await readAll(source)).equals(data)).toBe(true)
  })

  it('a Readable works too', async () => {
    const source = await prepareSource(Readable.from(chunksOf(data, 4096)), { key: KEY, sizeHint: data.byteLength })
    expect((await readAll(source)).equals(data)).toBe(true)
  })

  it('too short is InvalidSourceError once read', async () => {
    const source = await prepareSource(chunksOf(data, 7000), { key: KEY, sizeHint: data.byteLength + 1 })
    const error = await invalid(() => readAll(source))
    expect(error.message).toMatch(/has 100000 bytes but size_bytes is 100001/)
  })

  it('too long is InvalidSourceError as soon as it passes the size', async () => {
    const source = await prepareSource(chunksOf(data, 7000), { key: KEY, sizeHint: 50_000 })
    let passed = 0
    const error = await invalid(async () => {
      for await (const chunk of source.open()) passed += chunk.byteLength
    })
    expect(error.message).toMatch(/longer than its size_bytes \(50000\)/)
    expect(passed).toBeLessThanOrEqual(50_000)
  })

  it('can be opened once', async () => {
    const source = await prepareSource(chunksOf(data, 7000), { key: KEY, sizeHint: data.byteLength })
    await readAll(source)
    await invalid(async () => source.open())
  })

  it('string chunks (a Readable with an encoding) count as their UTF-8 bytes', async () => {
    const stream = Readable.from(['héllo', ' wörld'])
    const source = await prepareSource(stream as AsyncIterable<Uint8Array>, { key: KEY, sizeHint: 13 })
    expect((await readAll(source)).toString()).toBe('héllo wörld')
  })
})

describe('a stream without a size', () => {
  const data = randomBytes(100_000)

  it('passes through with an unknown size when no size is required', async () => {
    const source = await prepareSource(chunksOf(data, 7000), { key: KEY })
    expect(source.size).toBeUndefined()
    expect(source.bytes).toBeUndefined()
    expect((await readAll(source)).equals(data)).toBe(true)
  })

  it('is read into memory when a size is required', async () => {
    let read = 0
    async function* counted() {
      for await (const chunk of chunksOf(data, 7000)) {
        read += chunk.byteLength
        yield chunk
      }
    }
    const source = await prepareSource(counted(), { key: KEY, requireSize: true })
    expect(read).toBe(data.byteLength)
    expect(source.size).toBe(data.byteLength)
    expect(Buffer.from(source.bytes as Uint8Array).equals(data)).toBe(true)
    expect((await readAll(source)).equals(data)).toBe(true)
  })

  it('string chunks (a Readable with an encoding) are read as their UTF-8 bytes', async () => {
    const source = await prepareSource(Readable.from(['héllo', ' wörld']) as AsyncIterable<Uint8Array>, { key: KEY, requireSize: true })
    expect(source.size).toBe(13)
    expect((await readAll(source)).toString()).toBe('héllo wörld')
  })

  it('a sync iterable of chunks is read the same way', async () => {
    const source = await prepareSource([data.subarray(0, 10), data.subarray(10)], { key: KEY, requireSize: true })
    expect(source.size).toBe(data.byteLength)
  })

  it('exactly maxBufferedBytes is fine; more is InvalidSourceError, and reading stops there', async () => {
    expect((await prepareSource(chunksOf(data, 1000), { key: KEY, requireSize: true, maxBufferedBytes: data.byteLength })).size).toBe(
      data.byteLength,
    )
    let read = 0
    let closed = false
    async function* endless() {
      try {
        for (;;) {
          read += 1000
          yield new Uint8Array(1000)
        }
      } finally {
        closed = true
      }
    }
    const error = await invalid(() => prepareSource(endless(), { key: KEY, requireSize: true, maxBufferedBytes: 10_000 }))
    expect(error.message).toMatch(/exceeds 10000 bytes/)
    expect(read).toBe(11_000)
    expect(closed).toBe(true)
  })
})
