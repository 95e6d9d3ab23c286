import { StoreError } from '@sluice/core';
import { assertSupportedRedis, isVersionAtLeast, MIN_REDIS_VERSION, parseRedisVersion } from '@sluice/redis';

const info = (version: string): string =>
  ['# Server', `redis_version:${version}`, 'redis_git_sha1:00000000', 'redis_mode:standalone', ''].join(
    '\r\n',
  );

describe('the Redis version check', () => {
  it('reads redis_version from an INFO server reply', () => {
    expect(parseRedisVersion(info('7.0.15'))).toBe('7.0.15');
    expect(parseRedisVersion(info('6.2.14'))).toBe('6.2.14');
    expect(parseRedisVersion('# Server\r\nredis_mode:standalone\r\n')).toBeUndefined();
  });

  it('compares versions part by part, numerically', () => {
    expect(MIN_REDIS_VERSION).toBe('7.0.0');
    expect(isVersionAtLeast('7.0.0')).toBe(true);
    expect(isVersionAtLeast('7.0.15')).toBe(true);
    expect(isVersionAtLeast('7.2.4')).toBe(true);
    expect(isVersionAtLeast('10.0.0')).toBe(true);
    expect(isVersionAtLeast('6.2.14')).toBe(false);
    expect(isVersionAtLeast('6.9.99')).toBe(false);
    expect(isVersionAtLeast('5.0.7')).toBe(false);
    expect(isVersionAtLeast('7.1', '7.0.9')).toBe(true);
    expect(isVersionAtLeast('7.0.9', '7.0.10')).toBe(false);
  });

  it('refuses a server older than 7.0 with its version, the minimum and the address', () => {
    expect(() => {
      assertSupportedRedis(info('6.2.14'), '10.0.0.5:6379');
    }).toThrow(StoreError);
    expect(() => {
      assertSupportedRedis(info('6.2.14'), '10.0.0.5:6379');
    }).toThrow('redis: 10.0.0.5:6379 runs Redis 6.2.14; Sluice needs Redis 7.0 or newer');
    expect(() => {
      assertSupportedRedis(info('7.0.0'), 'x');
    }).not.toThrow();
  });
});
