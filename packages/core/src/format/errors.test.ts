/** The typed errors' messages and fields, on errors built in memory. */
import { describe, expect, it } from 'vitest'
import { ConfigurationError, S3RequestError } from './errors.js'

describe('S3RequestError', () => {
  it("gives the server's error code when the SDK has no message for it (Ceph RGW's errors have none)", () => {
    const refused = Object.assign(new Error('UnknownError'), { name: 'InvalidRequest', $metadata: { httpStatusCode: 400 } })
    const error = new S3RequestError('PutObject', 'a/b.wav', refused)
    expect(error.message).toBe('PutObject a/b.wav failed (HTTP 400): InvalidRequest')
    expect(error.statusCode).toBe(400)
    expect(error.cause).toBe(refused)
    const denied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })
    expect(new S3RequestError('PutObject', 'k', denied).message).toBe('PutObject k failed (HTTP 403): Access Denied')
  })
})

describe('ConfigurationError', () => {
  it('names the option and the key when given', () => {
    const error = new ConfigurationError('bad', { option: 'compression', key: 's/0.tar' })
    expect(error).toMatchObject({ name: 'ConfigurationError', message: 'bad', option: 'compression', key: 's/0.tar' })
    expect(new ConfigurationError('plain')).toMatchObject({ option: undefined, key: undefined })
    expect(new ConfigurationError('wrapped', { cause: 'x' }).cause).toBe('x')
  })
})
