import { expandIncludes } from '../src/scripts';
import { useRedisWithAdmin } from './helpers';

/**
 * `lua/includes/time.lua`: `storeNowS` builds the store's time string from `TIME`'s two strings
 * instead of formatting a number, and must answer what `storeNow` computes, for every count of
 * microseconds (`TIME` gives them without leading zeros: '0' to '999999').
 */
describe('the store clock in scripts', () => {
  const redis = useRedisWithAdmin();

  // `redis.call('TIME')` answers ARGV[1] and ARGV[2]: a local `redis` shadows the global one.
  const script = `local redis = { call = function() return { ARGV[1], ARGV[2] } end }
${expandIncludes('includes/time.lua')}
local n, s = storeNowS()
return { tostring(storeNow()), string.format('%d', n), s, type(n) }`;

  it.each([
    ['1796470494', '0', '1796470494000'],
    ['1796470494', '7', '1796470494000'],
    ['1796470494', '999', '1796470494000'],
    ['1796470494', '1000', '1796470494001'],
    ['1796470494', '5000', '1796470494005'],
    ['1796470494', '99999', '1796470494099'],
    ['1796470494', '100000', '1796470494100'],
    ['1796470494', '999999', '1796470494999'],
  ])('TIME %s s %s µs is %s ms', async (seconds, micros, ms) => {
    const [now, nFormatted, s, type] = (await redis.admin.eval(script, 0, seconds, micros)) as string[];
    expect([now, nFormatted, s, type]).toEqual([ms, ms, ms, 'number']);
  });
});
