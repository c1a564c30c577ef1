/**
 * `ScopedStore`: key templates with some variables filled in, as Python's `store.scope(**vars)`.
 *
 * @example
 * ```ts
 * const store = new S3ExchangeStore({ client, bucket: 'b', basePrefix: 'prod', defaultVars: { service: 'asr' } })
 * const job = store.scope({ prefix: 'asr/jobs/42' })
 * job.key('{prefix}/raw/{name}.wav', { name: 'a' }) // 'prod/asr/jobs/42/raw/a.wav'
 * job.key('{service}/latest')                     // 'prod/asr/latest' (defaultVars apply too)
 * job.manifestKey('samples')                      // 'prod/asr/jobs/42/samples/manifest.jsonl'
 * job.shardPrefix('samples')                      // 'prod/asr/jobs/42/samples/shards'
 * ```
 */
import type { TemplateVars } from '@s3exchange/core'

/** What a scope needs of its store: its key resolution (`S3ExchangeStore.resolveKey`). */
export interface KeyResolver {
  resolveKey(template: string, vars?: TemplateVars): string
}

/** A store's key resolution with some variables pre-filled. */
export class ScopedStore {
  readonly store: KeyResolver
  readonly vars: TemplateVars

  constructor(store: KeyResolver, vars: TemplateVars) {
    this.store = store
    this.vars = vars
  }

  /** Resolves a key template with the scope's variables, then `vars` (which win). */
  key(template: string, vars: TemplateVars = {}): string {
    return this.store.resolveKey(template, { ...this.vars, ...vars })
  }

  /** `{prefix}/<name>/manifest.jsonl`, resolved. */
  manifestKey(name: string): string {
    return this.key(`{prefix}/${name}/manifest.jsonl`)
  }

  /** `{prefix}/<name>/shards`, resolved. */
  shardPrefix(name: string): string {
    return this.key(`{prefix}/${name}/shards`)
  }
}
