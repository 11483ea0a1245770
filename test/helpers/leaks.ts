import { expect } from 'vitest';

/**
 * What must never reach a client (DESIGN.md §2): SQL, a SQLSTATE, a stack trace or a host name.
 * Checked on every response the security suites see, after the client's own input is cut out of
 * the body (a 404 may quote the path it was given, and fuzz inputs are full of SQL).
 */
const LEAKS: readonly { what: string; pattern: RegExp }[] = [
  { what: 'SQL', pattern: /\b(select\b[\s\S]{0,200}\bfrom|insert\s+into|update\b[\s\S]{0,100}\bset|delete\s+from|returning\s+\w|on\s+conflict)\b/i },
  { what: 'a Postgres message', pattern: /syntax error at or near|violates (unique|check|foreign key|not-null)|duplicate key value|invalid input syntax|relation "|column "|null value in column|deadlock detected|could not serialize|current transaction is aborted/i },
  { what: 'a SQLSTATE', pattern: /sqlstate|"(sqlState|severity|routine|schema|table|constraint)"\s*:|"code"\s*:\s*"[0-9][0-9A-Z]{4}"/i },
  { what: 'a stack trace', pattern: /\n\s+at\s|\bat [\w$.<>]+ \(|\.(ts|js|mjs):\d+:\d+|node_modules|\bTypeError\b|\bRangeError\b|\bSyntaxError\b|\bReferenceError\b/ },
  {
    what: 'a host name',
    pattern: /127\.0\.0\.1|\blocalhost\b|\[::1\]|\.neon\.tech|upstash\.io|frontrow\.internal|postgres(ql)?:\/\/|rediss?:\/\/|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH/i,
  },
];

/** Every spelling of `input` a response could quote: raw, JSON-escaped, URL-encoded and -decoded. */
function spellings(input: string): string[] {
  const forms = new Set([input, JSON.stringify(input).slice(1, -1), encodeURIComponent(input), encodeURI(input)]);
  try {
    forms.add(decodeURIComponent(input));
  } catch {
    // not URL-encoded text
  }
  return [...forms].filter((form) => form.length >= 3).sort((a, b) => b.length - a.length);
}

/** The leak `text` shows once every quoted input is removed, or undefined. */
export function findLeak(text: string, inputs: readonly string[] = []): string | undefined {
  let rest = text;
  for (const input of inputs) for (const form of spellings(input)) rest = rest.split(form).join('');
  for (const { what, pattern } of LEAKS) {
    const match = pattern.exec(rest);
    if (match) return `${what}: …${rest.slice(Math.max(0, match.index - 40), match.index + 80)}…`;
  }
  return undefined;
}

/** Asserts `text` (a response body) leaks nothing once the client's own `inputs` are cut out. */
export function expectNoLeak(text: string, inputs: readonly string[] = []): void {
  expect(findLeak(text, inputs), text.slice(0, 500)).toBeUndefined();
}

/**
 * Asserts a 4xx/5xx body is a problem document made of the problem fields plus the known
 * extensions, so an error never carries data of someone else's (e.g. a stored response).
 */
export function expectBareProblem(body: Record<string, unknown>, extensions: readonly string[] = []): void {
  const allowed = new Set(['type', 'title', 'status', 'detail', 'code', 'requestId', ...extensions]);
  expect(Object.keys(body).filter((key) => !allowed.has(key))).toEqual([]);
}
