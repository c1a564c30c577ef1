import { describe, expect, it } from 'vitest'
import { MissingPlaceholderError, S3ExchangeError } from './errors.js'
import {
  inferArchiveFormat,
  inferId,
  isArchiveKey,
  isManifestKey,
  normalizeKey,
  resolveTemplate,
  splitVirtualKey,
  virtualKey,
} from './keys.js'

describe('normalizeKey', () => {
  it.each([
    ['a/b/c', 'a/b/c'],
    ['/a//b///c/', 'a/b/c'],
    ['//a', 'a'],
    ['a/', 'a'],
    ['', ''],
    ['/', ''],
    ['a#b//c', 'a#b/c'],
  ])('%j → %j', (key, want) => {
    expect(normalizeKey(key)).toBe(want)
  })
})

describe('resolveTemplate', () => {
  it('substitutes variables of every type and normalizes', () => {
    expect(resolveTemplate('{service}/jobs/{job_id}/', { service: 'asr', job_id: 7 })).toBe('asr/jobs/7')
    expect(resolveTemplate('/{a}//{b}/{c}', { a: true, b: 10n, c: 'x' })).toBe('true/10/x')
  })

  it('substitutes a variable used twice', () => {
    expect(resolveTemplate('{x}/{x}', { x: 'y' })).toBe('y/y')
  })

  it('treats {{ and }} as literal braces', () => {
    expect(resolveTemplate('{{literal}}/{name}', { name: 'n' })).toBe('{literal}/n')
    expect(resolveTemplate('a{{{x}}}b', { x: 1 })).toBe('a{1}b')
  })

  it('leaves a template without placeholders as it is (normalized)', () => {
    expect(resolveTemplate('plain/key.wav')).toBe('plain/key.wav')
  })

  it('throws MissingPlaceholderError naming the placeholder and the template', () => {
    let caught: unknown
    try {
      resolveTemplate('{service}/jobs/{job_id}', { service: 'asr' })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(MissingPlaceholderError)
    expect(caught).toBeInstanceOf(S3ExchangeError)
    const error = caught as MissingPlaceholderError
    expect(error.placeholder).toBe('job_id')
    expect(error.template).toBe('{service}/jobs/{job_id}')
    expect(error.message).toContain("'job_id'")
    expect(error.message).toContain('{service}/jobs/{job_id}')
  })

  it('does not read placeholders from the object prototype', () => {
    expect(() => resolveTemplate('{toString}', {})).toThrow(MissingPlaceholderError)
  })

  it('does not take an escaped {{name}} for a placeholder', () => {
    expect(resolveTemplate('{{name}}', {})).toBe('{name}')
  })
})

describe('inferId', () => {
  it.each([
    ['a/b/clip-001.wav', 'clip-001'],
    ['a/b.tar.gz', 'b.tar'],
    ['.hidden', ''],
    ['dir/.hidden', ''],
    ['noext', 'noext'],
    ['dir.with.dots/noext', 'noext'],
    ['dir/', ''],
  ])('%j → %j', (key, want) => {
    expect(inferId(key)).toBe(want)
  })
})

describe('virtual keys', () => {
  it('splits at the first #', () => {
    expect(splitVirtualKey('s/shard-0.tar#x/0001.wav')).toStrictEqual({ archiveKey: 's/shard-0.tar', memberPath: 'x/0001.wav' })
    expect(splitVirtualKey('a.tar#b#c')).toStrictEqual({ archiveKey: 'a.tar', memberPath: 'b#c' })
    expect(splitVirtualKey('a.tar#')).toStrictEqual({ archiveKey: 'a.tar', memberPath: '' })
  })

  it('gives undefined for a key without #', () => {
    expect(splitVirtualKey('a/b.wav')).toBeUndefined()
  })

  it('virtualKey joins with #', () => {
    expect(virtualKey('a.tar', 'b/c.wav')).toBe('a.tar#b/c.wav')
    expect(splitVirtualKey(virtualKey('a.tar', 'm#1'))).toStrictEqual({ archiveKey: 'a.tar', memberPath: 'm#1' })
  })
})

describe('archive keys', () => {
  it.each([
    ['s/0.tar.gz', 'gzip'],
    ['s/0.tgz', 'gzip'],
    ['s/0.tar.bz2', 'bzip2'],
    ['s/0.tar.xz', 'xz'],
    ['s/0.tar', null],
    ['s/0.zip', null],
    ['s/0', null],
  ])('inferArchiveFormat(%j) → compression %j', (key, compression) => {
    expect(inferArchiveFormat(key)).toStrictEqual({ format: 'tar', compression })
  })

  it.each([
    ['a.tar', true],
    ['a.tar.gz', true],
    ['a.tgz', true],
    ['a.tar.bz2', true],
    ['a.tar.xz', true],
    ['a.gz', false],
    ['a.tar.zst', false],
    ['a.tar/b.wav', false],
    ['atar', false],
  ])('isArchiveKey(%j) → %j', (key, want) => {
    expect(isArchiveKey(key)).toBe(want)
  })

  it('isManifestKey', () => {
    expect(isManifestKey('a/manifest.jsonl')).toBe(true)
    expect(isManifestKey('a/manifest.json')).toBe(false)
  })
})
