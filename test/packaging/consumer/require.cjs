// A plain CommonJS consumer (test/packaging/consumers.ts runs it in the CommonJS project on each
// Node): every package loads with require(), and require() and import() give the same module, so
// an error thrown by code loaded one way is an instance of the class loaded the other way.
const assert = require('node:assert/strict')

const store = require('s3exchange')
const core = require('@s3exchange/core')
const testing = require('@s3exchange/testing')
const cli = require('@s3exchange/cli')

assert.equal(typeof store.S3ExchangeStore, 'function')
assert.equal(typeof store.Shard, 'function')
assert.equal(typeof core.readManifest, 'function')
assert.equal(typeof testing.startS3Proxy, 'function')
assert.equal(typeof cli.main, 'function')
assert.equal(store.ShardReadError, core.ShardReadError, 's3exchange re-exports the classes of @s3exchange/core')
assert.ok(new store.UnsupportedCompressionError('x', { archiveKey: 'k', compression: 'zstd' }) instanceof core.ShardReadError)

import('s3exchange').then(
  (imported) => {
    assert.equal(imported.S3ExchangeStore, store.S3ExchangeStore, 'import() and require() give the same module')
    console.log(
      JSON.stringify({
        node: process.version,
        done: ['require() of s3exchange, @s3exchange/core, /testing, /cli; same module as import()'],
      }),
    )
  },
  (error) => {
    console.error(error)
    process.exitCode = 1
  },
)
