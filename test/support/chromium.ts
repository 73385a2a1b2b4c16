import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { requires } from './requires.js';

/** Debian's Chromium: what an admin opening the status page or the console would use. */
const CHROMIUM = '/usr/bin/chromium';
/**
 * As root, in a sandbox with no network (the machine notes): no setuid sandbox, no GPU, and none
 * of Chromium's background connections, which this machine's closed network refuses.
 */
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** In CI the browser must be there (.ci/run installs it): a missing one fails, it never skips. */
export const browserNeeded = requires('Chromium', existsSync(CHROMIUM), `${CHROMIUM}: apt-get install chromium`);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}
