/**
 * Config keys for reliable delivery (issue #4): state_dir, retry.schedule and friends, delivery:,
 * and per endpoint signing_secret and retry_on. Same style as 10-config: problems name file and key.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { explainConfig, redactConfig } from '../src/config/explain.js';
import { DEFAULT_SCHEDULE_MS, parseConfig } from '../src/config/load.js';
import { parseDuration } from '../src/config/schema.js';

const Y = 'config/pbxhook.yaml';
const BASE = `
pbx:
  type: asterisk
  username: pbxhook
  secret: s
webhooks: ./webhooks.ini
`;
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const INI = `
[crm]
url = https://crm.example.com/hook
schema = 3cx
signing_secret = ${SECRET}
retry_on = 404, 409
`;

const parse = (yaml: string, ini = INI, env: Record<string, string> = {}) => parseConfig(BASE + yaml, ini, { yamlPath: Y }, env);

function problems(yaml: string, ini = INI): string[] {
  try {
    parse(yaml, ini);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n').filter((l) => l.startsWith('config/'));
  }
  throw new Error('expected a ConfigError');
}

describe('durations', () => {
  it('are written with a unit', () => {
    expect(['250ms', '5s', '2m', '1h', '7d', '1.5s'].map(parseDuration)).toEqual([250, 5_000, 120_000, 3_600_000, 604_800_000, 1_500]);
    expect(['5', 's', '5 min', '-1s', ''].map(parseDuration)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('defaults', () => {
  it('state_dir /var/lib/pbxhook; a telephony schedule of about a day; delivery limits', () => {
    const cfg = parse('');
    expect(cfg.stateDir).toBe('/var/lib/pbxhook');
    expect(cfg.delivery).toEqual({
      schedule: DEFAULT_SCHEDULE_MS, jitter: 0.2, retryAfterMaxMs: 3_600_000, connectTimeoutMs: 5_000, timeoutMs: 10_000,
      concurrency: 8, pauseAfterMs: 600_000, probeEveryMs: 60_000, stopTimeoutMs: 5_000, maxRows: 100_000,
      maxAgeMs: 3 * 86_400_000, keepDeliveredMs: 86_400_000, keepDeadMs: 30 * 86_400_000,
    });
    const total = DEFAULT_SCHEDULE_MS.reduce((a, b) => a + b, 0);
    expect(DEFAULT_SCHEDULE_MS[0]).toBe(5_000);
    expect(total).toBeGreaterThan(20 * 3_600_000);
    expect(total).toBeLessThanOrEqual(24 * 3_600_000);
  });
});

describe('given keys', () => {
  it('reads retry.schedule, delivery: and a relative state_dir', () => {
    const cfg = parse(`
state_dir: ./state
retry:
  schedule: [1s, 10s, 1m]
  jitter: 0
  retry_after_max: 10m
  connect_timeout_ms: 2000
  timeout_ms: 4000
delivery:
  concurrency: 2
  pause_after: 5m
  probe_every: 30s
  stop_timeout: 3s
  max_rows: 5000
  max_age: 2d
  keep_delivered: 12h
  keep_dead: 7d
`);
    expect(cfg.stateDir).toBe(path.resolve('config/state'));
    expect(cfg.delivery).toEqual({
      schedule: [1_000, 10_000, 60_000], jitter: 0, retryAfterMaxMs: 600_000, connectTimeoutMs: 2_000, timeoutMs: 4_000,
      concurrency: 2, pauseAfterMs: 300_000, probeEveryMs: 30_000, stopTimeoutMs: 3_000, maxRows: 5_000,
      maxAgeMs: 2 * 86_400_000, keepDeliveredMs: 43_200_000, keepDeadMs: 7 * 86_400_000,
    });
  });

  it('turns the older exponential retry keys into a schedule', () => {
    const cfg = parse('retry:\n  retries: 4\n  min_timeout_ms: 100\n  max_timeout_ms: 500\n');
    expect(cfg.delivery.schedule).toEqual([100, 200, 400, 500]);
    expect(parse('retry:\n  retries: 0\n').delivery.schedule).toEqual([]);
  });

  it('per endpoint: signing secrets and extra statuses to retry', () => {
    const [crm] = parse('').endpoints;
    expect(crm).toMatchObject({ signingSecrets: [SECRET], retryOn: [404, 409] });
    const plain = parse('', '[crm]\nurl = https://crm.example.com/hook\nschema = 3cx\n').endpoints[0]!;
    expect(plain.signingSecrets).toBeUndefined();
    expect(plain.retryOn).toBeUndefined();
  });

  it('PBXHOOK_SIGNING_SECRET_<ENDPOINT> overrides the ini', () => {
    const next = 'whsec_dGhpcy1pcy1hLW5ldy0zMi1ieXRlLXNlY3JldCE=';
    expect(parse('', INI, { PBXHOOK_SIGNING_SECRET_CRM: next }).endpoints[0]!.signingSecrets).toEqual([next]);
  });
});

describe('shutdown_grace_seconds (issue #14 item 5)', () => {
  it('bounds the whole stop, 10 s by default; stop_timeout is the part attempts in flight may use', () => {
    expect(parse('').shutdownGraceMs).toBe(10_000);
    expect(parse('shutdown_grace_seconds: 30\ndelivery:\n  stop_timeout: 20s\n')).toMatchObject({ shutdownGraceMs: 30_000, delivery: { stopTimeoutMs: 20_000 } });
    expect(explainConfig(parse(''))).toContain('on SIGTERM: attempts in flight get 5s; exited within 10s, after the last commit');
  });

  it('a stop_timeout that the grace cannot hold is a problem, naming both keys', () => {
    expect(problems('delivery:\n  stop_timeout: 10s\n')).toEqual([
      'config/pbxhook.yaml: delivery.stop_timeout: must be shorter than shutdown_grace_seconds (10 s), which bounds the whole stop',
    ]);
    expect(problems('shutdown_grace_seconds: 0\n')).toEqual(['config/pbxhook.yaml: shutdown_grace_seconds: expected a whole number from 1 to 3600, got 0']);
  });
});

describe('problems', () => {
  it('name the key: bad durations, both retry forms, unknown delivery keys, bad ranges', () => {
    expect(problems('retry:\n  schedule: [5s, 30]\n  retries: 3\ndelivery:\n  pause_afterr: 1m\n  concurrency: 0\n  max_age: soon\n')).toEqual([
      'config/pbxhook.yaml: retry.schedule[1]: expected a duration such as "500ms", "30s", "2m", "1h" or "7d", got "30"',
      'config/pbxhook.yaml: retry.schedule: give either schedule or retries/min_timeout_ms/max_timeout_ms, not both',
      'config/pbxhook.yaml: delivery.concurrency: expected a whole number from 1 to 256, got 0',
      'config/pbxhook.yaml: delivery.max_age: expected a duration such as "500ms", "30s", "2m", "1h" or "7d", got "soon"',
      'config/pbxhook.yaml: delivery.pause_afterr: unknown key (did you mean "pause_after"?)',
    ]);
    expect(problems('retry:\n  schedule: [5s]\n  retries: 3\n')).toEqual([
      'config/pbxhook.yaml: retry.schedule: give either schedule or retries/min_timeout_ms/max_timeout_ms, not both',
    ]);
    expect(problems('retry:\n  jitter: 2\n')).toEqual(['config/pbxhook.yaml: retry.jitter: expected a number of at most 1, got 2']);
  });

  it('ini: a bad signing secret never echoed; retry_on only 4xx', () => {
    const ini = '[crm]\nurl = https://crm.example.com/hook\nschema = 3cx\nsigning_secret = my-secret-value\nretry_on = 404, 500\n';
    const lines = problems('', ini);
    expect(lines).toEqual(['config/webhooks.ini: [crm] retry_on.1: expected HTTP statuses from 400 to 499, comma-separated, got "500"']);
    const secretOnly = problems('', '[crm]\nurl = https://crm.example.com/hook\nschema = 3cx\nsigning_secret = my-secret-value\n');
    expect(secretOnly).toEqual(['config/webhooks.ini: [crm] signing_secret: must be "whsec_" followed by base64']);
    expect(secretOnly.join('')).not.toContain('my-secret-value');
  });
});

describe('check-config', () => {
  it('explains delivery and signing without showing a secret', () => {
    const cfg = parse('retry:\n  schedule: [5s, 90s]\n');
    const text = explainConfig(cfg);
    expect(text).toContain('delivery: outbox /var/lib/pbxhook/outbox.sqlite; 8 at once per endpoint; timeouts: connect 5s, whole request 10s');
    expect(text).toContain('  retries after 5s, 1m30s (±20%; Retry-After up to 1h), then dead');
    expect(text).toContain('  an endpoint failing for 10m is paused and probed every 1m');
    expect(text).toContain('    signing: Standard Webhooks, 1 secret(s)\n    also retried: HTTP 404, 409');
    expect(text).not.toContain(SECRET);
    expect(JSON.stringify(redactConfig(cfg))).not.toContain(SECRET.slice(6));
  });
});
