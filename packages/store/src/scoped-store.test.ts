/**
 * Key resolution: resolveKey (defaultVars, vars, basePrefix, normalization, missing placeholders)
 * and scope() with its key, manifestKey and shardPrefix. No S3 needed: a store never talks to S3
 * to build keys.
 */
import { S3Client } from '@aws-sdk/client-s3'
import { afterAll, describe, expect, it } from 'vitest'
import { MissingPlaceholderError } from './index.js'
import { ScopedStore } from './scoped-store.js'
import { S3ExchangeStore } from './store.js'

// Never used to send a request: key resolution is local.
const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' } })
afterAll(() => client.destroy())

const storeWith = (options: { basePrefix?: string; defaultVars?: Record<string, string | number> } = {}) =>
  new S3ExchangeStore({ client, bucket: 'b', ...options })

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw')
}

describe('resolveKey', () => {
  it('fills placeholders from defaultVars and vars, vars winning', () => {
    const store = storeWith({ defaultVars: { service: 'asr', job: 1 } })
    expect(store.resolveKey('{service}/jobs/{job}/samples')).toBe('asr/jobs/1/samples')
    expect(store.resolveKey('{service}/jobs/{job}/samples', { job: 42 })).toBe('asr/jobs/42/samples')
    expect(store.resolveKey('{service}/{flag}', { service: 'tts', flag: true })).toBe('tts/true')
    expect(store.defaultVars).toEqual({ service: 'asr', job: 1 })
  })

  it('normalizes: repeated, leading and trailing slashes go', () => {
    const store = storeWith()
    expect(store.resolveKey('/a//{x}///b/', { x: 'y' })).toBe('a/y/b')
    expect(store.resolveKey('{x}/c', { x: '/lead/' })).toBe('lead/c')
  })

  it('{{ and }} are literal braces', () => {
    expect(storeWith().resolveKey('a/{{x}}/{y}', { y: 'z' })).toBe('a/{x}/z')
  })

  it('puts basePrefix before the key, normalized', () => {
    expect(storeWith({ basePrefix: 'prod' }).resolveKey('{s}/x', { s: 'asr' })).toBe('prod/asr/x')
    expect(storeWith({ basePrefix: '/prod//eu/' }).resolveKey('/asr//x/')).toBe('prod/eu/asr/x')
    expect(storeWith({ basePrefix: '' }).resolveKey('asr/x')).toBe('asr/x')
  })

  it('a placeholder without a value is MissingPlaceholderError naming it and the template', () => {
    const store = storeWith({ defaultVars: { service: 'asr' } })
    const error = thrown(() => store.resolveKey('{service}/training/{job_id}/samples', {}))
    expect(error).toBeInstanceOf(MissingPlaceholderError)
    expect((error as MissingPlaceholderError).placeholder).toBe('job_id')
    expect((error as MissingPlaceholderError).template).toBe('{service}/training/{job_id}/samples')
    expect((error as Error).message).toContain('job_id')
  })

  it('the first missing placeholder is the one named', () => {
    const error = thrown(() => storeWith().resolveKey('{a}/{b}'))
    expect((error as MissingPlaceholderError).placeholder).toBe('a')
  })

  it('is never applied to keys passed to other methods', () => {
    // basePrefix shapes built keys only: the store keeps keys it is given as they are.
    const store = storeWith({ basePrefix: 'prod' })
    expect(store.getManifest('x/manifest.jsonl').key).toBe('x/manifest.jsonl')
    expect(store.getShard('x/s.tar').archiveKey).toBe('x/s.tar')
  })
})

describe('scope', () => {
  it('returns a ScopedStore over the store with the vars', () => {
    const store = storeWith()
    const scoped = store.scope({ prefix: 'p' })
    expect(scoped).toBeInstanceOf(ScopedStore)
    expect(scoped.store).toBe(store)
    expect(scoped.vars).toEqual({ prefix: 'p' })
  })

  it('key(): scope vars over defaultVars, call vars over scope vars, basePrefix before', () => {
    const store = storeWith({ basePrefix: 'prod', defaultVars: { service: 'asr', name: 'default' } })
    const job = store.scope({ prefix: 'asr/jobs/42', name: 'scoped' })
    expect(job.key('{prefix}/raw/{name}.wav')).toBe('prod/asr/jobs/42/raw/scoped.wav')
    expect(job.key('{prefix}/raw/{name}.wav', { name: 'a' })).toBe('prod/asr/jobs/42/raw/a.wav')
    expect(job.key('{service}/latest')).toBe('prod/asr/latest')
    expect(store.scope({ service: 'tts' }).key('{service}/latest')).toBe('prod/tts/latest')
  })

  it("manifestKey(name) is '{prefix}/<name>/manifest.jsonl', shardPrefix(name) '{prefix}/<name>/shards'", () => {
    const job = storeWith().scope({ prefix: 'asr/jobs/42' })
    expect(job.manifestKey('samples')).toBe('asr/jobs/42/samples/manifest.jsonl')
    expect(job.shardPrefix('samples')).toBe('asr/jobs/42/samples/shards')

    const prod = storeWith({ basePrefix: 'prod' }).scope({ prefix: '/asr/jobs/42/' })
    expect(prod.manifestKey('samples')).toBe('prod/asr/jobs/42/samples/manifest.jsonl')
    expect(prod.shardPrefix('samples')).toBe('prod/asr/jobs/42/samples/shards')
  })

  it('prefix may come from defaultVars', () => {
    const store = storeWith({ defaultVars: { prefix: 'from/defaults' } })
    expect(store.scope({}).manifestKey('x')).toBe('from/defaults/x/manifest.jsonl')
  })

  it('without a prefix, manifestKey is MissingPlaceholderError', () => {
    const error = thrown(() => storeWith().scope({ job: 1 }).manifestKey('samples'))
    expect(error).toBeInstanceOf(MissingPlaceholderError)
    expect((error as MissingPlaceholderError).placeholder).toBe('prefix')
    expect((error as MissingPlaceholderError).template).toBe('{prefix}/samples/manifest.jsonl')
  })

  it('the scope does not change the store', () => {
    const store = storeWith({ defaultVars: { a: 1 } })
    store.scope({ a: 2 })
    expect(store.resolveKey('{a}')).toBe('1')
  })
})
