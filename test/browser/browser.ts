import fs from 'node:fs';
import path from 'node:path';
import axe from 'axe-core';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { expect } from 'vitest';

/** Debian's Chromium (`.ci/run` installs it); CHROMIUM_PATH points elsewhere. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags known to work on these machines: no sandbox as root, no GPU, nothing phoning home. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where screenshots go: a git-ignored folder, kept as the run's artifacts. */
export const SCREENSHOT_DIR = path.resolve(import.meta.dirname, '../../test-results/browser');

/** Headless Chromium with a fresh profile (playwright makes a temp user-data-dir per launch). */
export function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or set CHROMIUM_PATH)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

let shots = 0;

/**
 * Saves a numbered screenshot of `page` as `<n>-<name>.png`: the whole page (at most `maxHeight` pixels
 * of it, from the top), or with `fullPage: false` what the viewport shows.
 */
export async function screenshot(
  page: Page,
  name: string,
  { fullPage = true, maxHeight }: { fullPage?: boolean; maxHeight?: number } = {},
): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  shots += 1;
  const file = path.join(SCREENSHOT_DIR, `${String(shots).padStart(2, '0')}-${name}.png`);
  const width = page.viewportSize()?.width;
  if (fullPage && maxHeight && width) {
    const height = await page.evaluate(() => (globalThis as unknown as InPage).document.documentElement.scrollHeight);
    await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, width, height: Math.min(height, maxHeight) } });
  } else {
    await page.screenshot({ path: file, fullPage });
  }
}

/** How long a page may take to show something on a busy shared machine: a ceiling, never a pace. */
export const UI_TIMEOUT_MS = 45_000;

/** Waits until `locator`'s text matches `pattern`. */
export async function expectText(locator: Locator, pattern: RegExp): Promise<void> {
  await expect.poll(async () => ((await locator.count()) > 0 ? await locator.first().innerText() : ''), { timeout: UI_TIMEOUT_MS, interval: 200 }).toMatch(pattern);
}

/** Waits until `locator` is shown (or, with `visible: false`, gone). */
export async function expectVisible(locator: Locator, visible = true): Promise<void> {
  await locator.first().waitFor({ state: visible ? 'visible' : 'detached', timeout: UI_TIMEOUT_MS });
}

/** The viewports every page state is checked in: a desktop window and a 390-px-wide phone. */
export const DESKTOP = { width: 1100, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** What the page sees: axe once injected, and the document (this file compiles without the DOM library). */
type InPage = { axe?: typeof axe; document: { documentElement: { scrollWidth: number; scrollHeight: number } } };

/**
 * Runs axe-core in `page` and fails on any serious or critical violation, naming each rule and the
 * elements it found (minor and moderate ones are reported by axe but not failed on: issue 22).
 */
export async function expectAccessible(page: Page, state: string): Promise<void> {
  if (!(await page.evaluate(() => (globalThis as unknown as InPage).axe !== undefined))) await page.addScriptTag({ content: axe.source });
  const violations: axe.Result[] = await page.evaluate(async () => {
    const { axe: inPageAxe, document } = globalThis as unknown as InPage;
    return (await inPageAxe!.run(document, { resultTypes: ['violations'] })).violations;
  });
  const blocking = violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id} (${violation.impact}): ${violation.nodes.map((node) => node.target.join(' ')).join(' | ')}`);
  expect(blocking, `axe on ${state}`).toEqual([]);
}

/**
 * Checks one page state as the issue asks: axe at the desktop size and at a phone's, with a
 * screenshot of each (`<n>-<name>-desktop.png` of the page's first 1,400 px, `<n>-<name>-phone.png` of the first screen), then
 * back to desktop.
 */
export async function checkState(page: Page, name: string): Promise<void> {
  await expectAccessible(page, `${name} (desktop)`);
  await screenshot(page, `${name}-desktop`, { maxHeight: 1400 });
  await page.setViewportSize(PHONE);
  await expectAccessible(page, `${name} (phone)`);
  // Nothing may need sideways scrolling at phone width.
  expect(await page.evaluate(() => (globalThis as unknown as InPage).document.documentElement.scrollWidth), `${name}: page wider than the phone`).toBeLessThanOrEqual(PHONE.width);
  // The phone's first screen, as a fan holding it sees it (the whole page can be many screens long).
  await screenshot(page, `${name}-phone`, { fullPage: false });
  await page.setViewportSize(DESKTOP);
}
