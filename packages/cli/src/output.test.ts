/** Errors as `s3x --json` prints them, and the ordered look-ahead map behind `manifest ls -l`. */
import { InvalidManifestError, PartialDeleteError, PublishError, S3RequestError, ShardReadError } from 's3exchange'
import { describe, expect, it } from 'vitest'
import { UsageError } from './args.js'
import { errorJson } from './output.js'
import { mapAhead } from './pool.js'
import { InvalidS3UriError } from './s3-uri.js'

describe('errorJson', () => {
  it("writes the name, the message and the error's typed fields", () => {
    expect(errorJson(new InvalidManifestError('bad JSON', { key: 'm.jsonl', lineNumber: 3 }))).toStrictEqual({
      name: 'InvalidManifestError',
      message: 'Invalid manifest (m.jsonl, line 3): bad JSON',
      key: 'm.jsonl',
      lineNumber: 3,
      reason: 'bad JSON',
    })
    expect(errorJson(new ShardReadError('truncated', { archiveKey: 'a.tar', memberPath: 'x/1.wav' }))).toStrictEqual({
      name: 'ShardReadError',
      message: 'Shard read failed (a.tar#x/1.wav): truncated',
      archiveKey: 'a.tar',
      memberPath: 'x/1.wav',
      reason: 'truncated',
    })
    expect(errorJson(new PartialDeleteError(2, { 'a.txt': 'AccessDenied' }))).toMatchObject({
      deletedCount: 2,
      errors: { 'a.txt': 'AccessDenied' },
    })
    expect(errorJson(new InvalidS3UriError('s3:/x', '<prefix>', 'no', 'ls'))).toMatchObject({
      argument: '<prefix>',
      uri: 's3:/x',
      command: 'ls',
    })
    expect(errorJson(new UsageError('bad', 'ls'))).toStrictEqual({ name: 'UsageError', message: 'bad', command: 'ls' })
  })

  it('writes the cause the same way, without the SDK $-fields, and the stack only with debug', () => {
    const sdkError = Object.assign(new Error('Access Denied'), {
      name: 'AccessDenied',
      Code: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
    })
    const json = errorJson(new PublishError('m.jsonl', ['s-0.tar'], new S3RequestError('PutObject', 's-1.tar', sdkError)))
    expect(json).toMatchObject({
      name: 'PublishError',
      key: 'm.jsonl',
      uploadedKeys: ['s-0.tar'],
      cause: {
        name: 'S3RequestError',
        key: 's-1.tar',
        operation: 'PutObject',
        statusCode: 403,
        cause: { name: 'AccessDenied', message: 'Access Denied', Code: 'AccessDenied' },
      },
    })
    expect(JSON.stringify(json)).not.toContain('$')
    expect(json.stack).toBeUndefined()
    expect(errorJson(new Error('x'), true).stack).toMatch(/^Error: x\n\s+at /)
  })

  it('keeps what JSON can hold and drops the rest', () => {
    const error = Object.assign(new Error('odd'), {
      code: 'ENOENT',
      when: new Date(0),
      big: 10n,
      nan: Number.NaN,
      nested: { a: [1, 'b', null] },
    })
    expect(errorJson(error)).toStrictEqual({ name: 'Error', message: 'odd', code: 'ENOENT', nested: { a: [1, 'b', null] } })
    expect(errorJson('a string')).toStrictEqual({ name: 'string', message: 'a string' })
  })
})

describe('mapAhead', () => {
  it('keeps the input order with calls overlapping up to the limit', async () => {
    let running = 0
    let most = 0
    const results = await Array.fromAsync(
      mapAhead([30, 5, 20, 1, 10, 2], 3, async (ms) => {
        most = Math.max(most, ++running)
        await new Promise((resolve) => setTimeout(resolve, ms))
        running--
        return ms * 2
      }),
    )
    expect(results).toStrictEqual([60, 10, 40, 2, 20, 4])
    expect(most).toBe(3)
  })

  it('throws a rejection in its turn, after the results before it', async () => {
    const seen: number[] = []
    const failing = mapAhead([1, 2, 3, 4], 4, async (n) => {
      if (n === 3) throw new Error('three')
      return n
    })
    await expect(
      (async () => {
        for await (const n of failing) seen.push(n)
      })(),
    ).rejects.toThrow('three')
    expect(seen).toStrictEqual([1, 2])
  })
})
