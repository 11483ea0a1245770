import { describe, expect, it } from 'vitest';
import { addressKey, NO_ADDRESS_KEY } from '../../src/lib/rate-limit.ts';

describe('addressKey', () => {
  it('keys an IPv4 address as itself', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey(' 203.0.113.9 ')).toBe('203.0.113.9');
  });

  it('keys every address of one IPv6 /64 alike, whatever the interface id or spelling', () => {
    const key = addressKey('2001:db8:1:2::1');
    expect(key).toBe('2001:db8:1:2::/64');
    for (const same of [
      '2001:db8:1:2::2',
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0DB8:0001:0002:0000:0000:0000:0001',
      '2001:db8:1:2:a:b:c:d%eth0',
      '2001:db8:1:2:0:0:192.0.2.1',
    ]) {
      expect(addressKey(same), same).toBe(key);
    }
  });

  it('keys neighbouring /64s apart', () => {
    expect(addressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1')).toBe('fe80:0:0:0::/64');
  });

  it('keys an IPv4-mapped IPv6 address as its IPv4, so it shares the IPv4 client’s bucket', () => {
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::FFFF:c000:0201')).toBe('192.0.2.1');
    expect(addressKey('0:0:0:0:0:ffff:192.0.2.1')).toBe('192.0.2.1');
  });

  it('gives a request without an address the shared no-address bucket, not a free pass', () => {
    expect(addressKey(undefined)).toBe(NO_ADDRESS_KEY);
    expect(addressKey(null)).toBe(NO_ADDRESS_KEY);
    expect(addressKey('')).toBe(NO_ADDRESS_KEY);
    expect(addressKey('   ')).toBe(NO_ADDRESS_KEY);
  });

  it('keeps text that is no IPv6 address as sent, cut to 64 characters', () => {
    expect(addressKey('1:2:3:4:5:6:7:8:9')).toBe('1:2:3:4:5:6:7:8:9');
    expect(addressKey('1::2::3')).toBe('1::2::3');
    expect(addressKey('::ffff:300.1.1.1')).toBe('::ffff:300.1.1.1');
    expect(addressKey(`x:${'a'.repeat(100)}`)).toHaveLength(64);
  });
});
