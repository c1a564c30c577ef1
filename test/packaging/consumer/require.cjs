// A plain CommonJS consumer (test/packaging/consumers.ts runs it in the CommonJS project on each
// Node): every package loads with require(), and require() and import() give the same module, so
// an error thrown by code loaded one way is an instance of the class loaded the other way; the s3x
// executable runs.
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const { join } = require('node:path')

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

// The s3x executable starts on this Node and knows its version.
const bin = join(__dirname, 'node_modules/@s3exchange/cli/dist/bin.js')
assert.equal(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), cli.version())

import('s3exchange').then(
  (imported) => {
    assert.equal(imported.S3ExchangeStore, store.S3ExchangeStore, 'import() and require() give the same module')
    console.log(
      JSON.stringify({
        node: process.version,
        done: ['require() of s3exchange, @s3exchange/core, /testing, /cli; same module as import(); s3x --version'],
      }),
    )
  },
  (error) => {
    console.error(error)
    process.exitCode = 1
  },
)
