import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, EX_CONFIG } from '../src/config/errors.js';
import { explainConfig, redactConfig, redactUrl } from '../src/config/explain.js';
import { eventNamesOf } from '../src/config/endpoints.js';
import { readIniSections } from '../src/config/ini.js';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { PBX_NAME } from '../src/config/schema.js';
import { replayTrace } from './support/replayTrace.js';

// Minimal valid files; the shipped, fully commented examples live in config/ and webhooks.ini.example.
const YAML = `
pbx:
  type: asterisk
  host: 10.0.0.5
  username: pbxhook
  secret: from-file
roles:
  ivrs: [500, "501@ivr-main"]
  queues: ["600"]
  ring_groups: ["700@ext-group"]
  names:
    100: Reception
calls:
  timezone: Europe/Berlin
retry:
  retries: 3
webhooks: ./webhooks.ini
`;

const INI = `
; one section per endpoint
[crm-prod]
url = https://crm.example.com/pbx/hook
schema = 3cx
token = tok-literal-123

[legacy]
url = "https://legacy.example.com/hook?a=1;b=2"
schema = 3cx
variant = urlencoded
method = get
events = ringing, hangupincoming
enabled = no
`;

const Y = 'config/pbxhook.yaml';
const I = 'config/webhooks.ini';

const dirs: string[] = [];
function tempConfig(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pbxhook-config-'));
  dirs.push(dir);
  mkdirSync(path.join(dir, 'config'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The problems of a config that must fail, as formatted lines. */
function problems(yaml: string, ini: string | undefined, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, ini, { yamlPath: Y }, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe('PBXHOOK_CONFIG_INVALID');
    expect(e.exitCode).toBe(EX_CONFIG);
    return e.message.split('\n').filter((l) => l.startsWith('config/'));
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('loads the example, applying defaults and resolving webhooks next to the YAML file', () => {
    const dir = tempConfig({ 'config/pbxhook.yaml': YAML, 'config/webhooks.ini': INI });
    const cfg = loadConfig(path.join(dir, 'config/pbxhook.yaml'), {});
    expect(cfg.file).toBe(path.join(dir, 'config/pbxhook.yaml'));
    expect(cfg.pbx).toEqual({ type: 'asterisk', name: expect.stringMatching(PBX_NAME), host: '10.0.0.5', port: 5038, username: 'pbxhook', secret: 'from-file', maxFrameBytes: 65536, eventFilter: 'auto' });
    expect(cfg.roles).toEqual({
      ivrs: ['500', '501@ivr-main'],
      queues: ['600'],
      ringGroups: ['700@ext-group'],
      extensionPattern: '^[0-9]{2,6}$',
      trunkPattern: '',
      names: { '100': 'Reception' },
    });
    expect(cfg.calls).toEqual({ idleTimeoutSeconds: 14400, timezone: 'Europe/Berlin' });
    // retries: 3 in the file is the older exponential form of the schedule: 1 s doubling, capped at 300 s.
    expect(cfg.delivery.schedule).toEqual([1000, 2000, 4000]);
    expect(cfg.delivery.timeoutMs).toBe(10000);
    expect(cfg.log).toEqual({ level: 'info' });
    expect(cfg.endpoints).toEqual([
      {
        name: 'crm-prod',
        enabled: true,
        schema: '3cx',
        url: 'https://crm.example.com/pbx/hook',
        method: 'POST',
        variant: 'json',
        events: [],
        token: 'tok-literal-123',
      },
      {
        name: 'legacy',
        enabled: false,
        schema: '3cx',
        url: 'https://legacy.example.com/hook?a=1;b=2',
        method: 'GET',
        variant: 'urlencoded',
        events: ['ringing', 'hangupincoming'],
      },
    ]);
  });

  it('defaults the FreeSWITCH port and needs no webhooks file', () => {
    const cfg = parseConfig('pbx: {type: freeswitch, password: ClueCon}', undefined, { yamlPath: Y }, {});
    expect(cfg.pbx).toEqual({ type: 'freeswitch', name: expect.stringMatching(PBX_NAME), host: '127.0.0.1', port: 8021, password: 'ClueCon', maxFrameBytes: 1048576 });
    expect(cfg.endpoints).toEqual([]);
  });

  it('names the YAML file and the webhooks key when the ini file is missing', () => {
    const dir = tempConfig({ 'config/pbxhook.yaml': YAML.replace('./webhooks.ini', './nope.ini') });
    const yamlPath = path.join(dir, 'config/pbxhook.yaml');
    expect(() => loadConfig(yamlPath, {})).toThrow(
      `${yamlPath}: webhooks: cannot read "${path.join(dir, 'config/nope.ini')}" (no such file)`,
    );
  });

  it('reports an unreadable YAML file as a ConfigError', () => {
    expect(() => loadConfig('/nonexistent/pbxhook.yaml', {})).toThrow(
      '/nonexistent/pbxhook.yaml: cannot read the file (no such file)',
    );
  });
});

describe('problems name the file and the key', () => {
  it('unknown YAML keys, with a hint for camelCase', () => {
    const yaml = YAML.replace('ring_groups:', 'ringGroups:').replace('retries: 3', 'retries: 3\n  backoff: 2');
    expect(problems(yaml, INI)).toEqual([
      'config/pbxhook.yaml: roles.ringGroups: unknown key (did you mean "ring_groups"?)',
      'config/pbxhook.yaml: retry.backoff: unknown key; allowed here: schedule, retries, min_timeout_ms, max_timeout_ms, jitter, retry_after_max, timeout_ms, connect_timeout_ms',
    ]);
  });

  it('a value of the wrong type', () => {
    expect(problems(YAML.replace('host: 10.0.0.5', 'host: 10.0.0.5\n  port: abc'), INI)).toEqual([
      'config/pbxhook.yaml: pbx.port: expected a whole number from 1 to 65535, got "abc"',
    ]);
  });

  it('a bad PBX type, log level, dialplan target and name', () => {
    const yaml = `pbx: {type: 3cx}\nlog: {level: loud}\nroles: {ivrs: ["5 00"], names: {100: 42}}`;
    expect(problems(yaml, undefined)).toEqual([
      'config/pbxhook.yaml: pbx.type: expected one of "asterisk", "freeswitch", got "3cx"',
      'config/pbxhook.yaml: roles.ivrs[0]: expected "exten" or "exten@context", got "5 00"',
      'config/pbxhook.yaml: roles.names.100: expected a string (put it in quotes), got 42',
      'config/pbxhook.yaml: log.level: expected one of "trace", "debug", "info", "warn", "error", got "loud"',
    ]);
  });

  it('an event filter that is neither auto nor off (issue #15)', () => {
    expect(problems(YAML.replace('host: 10.0.0.5', 'host: 10.0.0.5\n  event_filter: on'), INI)).toEqual([
      'config/pbxhook.yaml: pbx.event_filter: expected one of "auto", "off", got "on"',
    ]);
    const cfg = parseConfig(YAML.replace('host: 10.0.0.5', 'host: 10.0.0.5\n  event_filter: "off"'), INI, { yamlPath: 'config/pbxhook.yaml' }, {});
    expect(cfg.pbx).toMatchObject({ eventFilter: 'off' });
  });

  it('a time zone that is not IANA', () => {
    expect(problems(YAML.replace('Europe/Berlin', 'Mars/Olympus'), INI)).toEqual([
      'config/pbxhook.yaml: calls.timezone: is not an IANA time zone such as "Europe/Berlin", got "Mars/Olympus"',
    ]);
  });

  it('an extension pattern that is no regex, or whose group named ext can match nothing (issue #12 item 5)', () => {
    const roles = (extension: string, trunk = '') =>
      YAML.replace('  names:', () => `  extension_pattern: '${extension}'\n  trunk_pattern: '${trunk}'\n  names:`);
    expect(problems(roles('^(?<ext>[0-9]+-[0-9]+$', '[9'), INI)).toEqual([
      'config/pbxhook.yaml: roles.extension_pattern: is not a valid regular expression (Unterminated group), got "^(?<ext>[0-9]+-[0-9]+$"',
      'config/pbxhook.yaml: roles.trunk_pattern: is not a valid regular expression (Unterminated character class), got "[9"',
    ]);
    const empty = 'can match an empty string, which would give an empty extension; make it take at least one character';
    expect(problems(roles('^(?<ext>\\d*)-\\d+$'), INI)).toEqual([
      `config/pbxhook.yaml: roles.extension_pattern: the named group ext ${empty}, e.g. (?<ext>\\d+)`,
    ]);
    expect(problems(roles('^(?<ext>\\d+|)-(\\d+)$'), INI)).toEqual([
      `config/pbxhook.yaml: roles.extension_pattern: the named group ext ${empty}, e.g. (?<ext>\\d+)`,
    ]);
    // Only the group named ext is the extension: other groups, named or not, may match nothing,
    // and the ext group may be left out of a match (another alternative).
    for (const fine of ['^(\\d{0,4})-\\d+$', '^(?<tenant>\\d*)-\\d+$', '^(?<ext>\\d+)-(\\d*)$', '^(?<ext>\\d+)-\\d+$|^operator$']) {
      expect(() => parseConfig(roles(fine), INI, { yamlPath: Y }, {})).not.toThrow();
    }
    // Parentheses inside a character class or escaped do not end the group.
    expect(problems(roles('^(?<ext>[)(]?\\(?)-\\d+$'), INI)).toEqual([
      `config/pbxhook.yaml: roles.extension_pattern: the named group ext ${empty}, e.g. (?<ext>\\d+)`,
    ]);
  });

  it('a missing secret, never echoing a secret value', () => {
    expect(problems(YAML.replace('secret: from-file', ''), INI)).toEqual([
      'config/pbxhook.yaml: pbx.secret: missing (this key is required)',
    ]);
    const lines = problems(YAML.replace('secret: from-file', 'secret: 918273'), INI);
    expect(lines).toEqual(['config/pbxhook.yaml: pbx.secret: expected a string (put it in quotes)']);
  });

  it('a bad URL and a bad method in the ini file', () => {
    const ini = INI.replace('https://crm.example.com/pbx/hook', 'ftp://crm.example.com/').replace('method = get', 'method = PUT');
    expect(problems(YAML, ini)).toEqual([
      'config/webhooks.ini: [crm-prod] url: expected an absolute http:// or https:// URL, got "ftp://crm.example.com/"',
      'config/webhooks.ini: [legacy] method: expected one of "GET", "POST", got "PUT"',
    ]);
  });

  it('unknown and structurally wrong ini keys', () => {
    const ini = `stray = 1\n${INI}\nbogus = 2\nurl2 = x\n[crm.b]\nurl = https://x/\n`;
    expect(problems(YAML, ini)).toEqual([
      'config/webhooks.ini: line 1: key "stray" is outside any [section]; every key belongs to an endpoint section',
      'config/webhooks.ini: line 19: section name [crm.b] must be letters, digits, "-" or "_" (it names the endpoint)',
      'config/webhooks.ini: [legacy] bogus: unknown key; allowed here: schema, url, method, events, token, enabled, signing_secret, retry_on, only_dids, only_queues, only_ring_groups, only_extensions, only_directions, variant, recording_url',
      'config/webhooks.ini: [legacy] url2: unknown key (did you mean "url"?)',
    ]);
  });

  it('an unquoted ";" that would silently cut a URL, and a key set twice', () => {
    const ini = INI.replace('"https://legacy.example.com/hook?a=1;b=2"', 'https://legacy.example.com/hook?a=1;b=2') + 'enabled = yes\n';
    expect(problems(YAML, ini)).toEqual([
      'config/webhooks.ini: [legacy] url: contains ";", which starts a comment in ini files; put the whole value in double quotes or write \\;',
      'config/webhooks.ini: [legacy] enabled: set twice (again at line 15)',
    ]);
  });

  it('a recording URL with an unknown placeholder', () => {
    const ini = `${INI}recording_url = https://pbx/rec/{uuid}\n`;
    expect(problems(YAML, ini)).toEqual([
      'config/webhooks.ini: [legacy] recording_url: unknown placeholder {uuid}; allowed: {file}, {path}, {id}, {n}',
    ]);
  });

  it('a YAML syntax error, with its line', () => {
    const lines = problems('pbx:\n  type: asterisk\n  host: [oops\n', undefined);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^config\/pbxhook\.yaml: YAML: .*line \d+, column \d+$/);
  });

  it('collects problems from both files into one error', () => {
    const yaml = YAML.replace('Europe/Berlin', 'Nowhere').replace('retries: 3', 'retries: -1');
    const ini = INI.replace('schema = 3cx', 'schema = salesforce');
    try {
      parseConfig(yaml, ini, { yamlPath: Y }, {});
      expect.unreachable();
    } catch (err) {
      const e = err as ConfigError;
      expect(e.problems.map((p) => `${p.file} ${p.key}`)).toEqual([
        `${Y} calls.timezone`,
        `${Y} retry.retries`,
        `${I} [crm-prod] schema`,
      ]);
      expect(e.message.split('\n')[0]).toBe('3 configuration problems:');
    }
  });
});

describe('environment overrides and token references', () => {
  it('PBXHOOK_AMI_SECRET and PBXHOOK_TOKEN_<NAME> win over the files; an empty variable is unset', () => {
    const env = { PBXHOOK_AMI_SECRET: 'from-env', PBXHOOK_TOKEN_CRM_PROD: 'env-token', PBXHOOK_TOKEN_LEGACY: '' };
    const cfg = parseConfig(YAML.replace('secret: from-file', ''), INI, { yamlPath: Y }, env);
    expect(cfg.pbx).toMatchObject({ secret: 'from-env' });
    expect(cfg.endpoints.map((e) => [e.name, e.token])).toEqual([
      ['crm-prod', 'env-token'],
      ['legacy', undefined],
    ]);
  });

  it('PBXHOOK_ESL_PASSWORD applies to FreeSWITCH only', () => {
    const env = { PBXHOOK_ESL_PASSWORD: 'pw', PBXHOOK_AMI_SECRET: 'ignored' };
    expect(parseConfig('pbx: {type: freeswitch}', undefined, { yamlPath: Y }, env).pbx).toMatchObject({ password: 'pw' });
  });

  it('token = env:NAME reads a variable; a missing one is an error that shows no token', () => {
    const ini = INI.replace('tok-literal-123', 'env:CRM_TOKEN');
    const cfg = parseConfig(YAML, ini, { yamlPath: Y }, { CRM_TOKEN: 's3cr3t-env' });
    expect(cfg.endpoints[0]?.token).toBe('s3cr3t-env');
    expect(problems(YAML, ini)).toEqual([
      'config/webhooks.ini: [crm-prod] token: environment variable CRM_TOKEN is not set',
    ]);
  });

  it('token = file:PATH reads a file relative to the ini file, without its trailing newline', () => {
    const dir = tempConfig({
      'config/pbxhook.yaml': YAML,
      'config/webhooks.ini': INI.replace('tok-literal-123', 'file:crm.token'),
      'config/crm.token': 's3cr3t-file\n',
    });
    const cfg = loadConfig(path.join(dir, 'config/pbxhook.yaml'), {});
    expect(cfg.endpoints[0]?.token).toBe('s3cr3t-file');

    const missing = INI.replace('tok-literal-123', 'file:/nonexistent/crm.token');
    expect(problems(YAML, missing)).toEqual([
      'config/webhooks.ini: [crm-prod] token: cannot read token file "/nonexistent/crm.token" (ENOENT)',
    ]);
  });

  it('rejects a token that cannot go into a header, without quoting it', () => {
    const lines = problems(YAML, INI.replace('tok-literal-123', '"tok with space"'));
    expect(lines).toEqual(['config/webhooks.ini: [crm-prod] token: value must be printable ASCII without spaces or line breaks']);
  });
});

describe('explainConfig', () => {
  it('summarises without secrets', () => {
    const cfg = parseConfig(YAML, INI.replace('hook?a=1', 'hook?key=k-123&a=1'), { yamlPath: Y }, {});
    const text = explainConfig(cfg);
    expect(text).toContain('pbx: asterisk at 10.0.0.5:5038, user pbxhook, secret ***');
    expect(text).toContain('ivrs: 500, 501@ivr-main');
    expect(text).toContain('ring groups: 700@ext-group');
    expect(text).toContain('  [crm-prod]\n    3cx/json: POST https://crm.example.com/pbx/hook\n    events: all\n    token: set');
    expect(text).toContain('  [legacy] (disabled)\n    3cx/urlencoded: GET https://legacy.example.com/hook?key=***&a=***');
    expect(text).toContain('token: not set');
    expect(text).not.toContain('from-file');
    expect(text).not.toContain('tok-literal-123');
    expect(text).not.toContain('k-123');
    const json = JSON.stringify(redactConfig(cfg));
    expect(json).not.toContain('from-file');
    expect(json).not.toContain('tok-literal-123');
    expect(redactUrl('https://u:pw@h/p')).toBe('https://u:***@h/p');
  });

  it('names the group ext as the extension, with a hosted PBX example when it fits; other groups change nothing (issue #12 item 5)', () => {
    const explain = (pattern: string) => {
      const yaml = YAML.replace('  names:', () => `  extension_pattern: '${pattern}'\n  names:`);
      return explainConfig(parseConfig(yaml, INI, { yamlPath: Y }, {})).split('\n').find((l) => l.includes('extensions match'));
    };
    expect(explain('^[0-9]{2,6}$')).toBe('  extensions match: /^[0-9]{2,6}$/');
    expect(explain('^(?<ext>\\d+)-\\d+$')).toBe('  extensions match: /^(?<ext>\\d+)-\\d+$/ (extension = group ext: PJSIP/1001-12-… → 1001)');
    expect(explain('^(?<ext>\\d+)_t\\d+$')).toBe('  extensions match: /^(?<ext>\\d+)_t\\d+$/ (extension = group ext)');
    // Groups without the name ext: the whole name, as without groups, and check-config says so.
    const whole = ' (extension = the whole name; only a group named ext takes part of it)';
    expect(explain('^(\\d+)-\\d+$')).toBe(`  extensions match: /^(\\d+)-\\d+$/${whole}`);
    expect(explain('^(?<tenant>\\d+)_(\\d+)$')).toBe(`  extensions match: /^(?<tenant>\\d+)_(\\d+)$/${whole}`);
    expect(explain('^(?:1|2)\\d{2}$')).toBe('  extensions match: /^(?:1|2)\\d{2}$/');
  });
});

describe('mistakes caught before they cost a webhook (issue #13)', () => {
  const section = (name: string, lines: string) => `[${name}]\nurl = https://crm.example.com/${name}\n${lines}\n`;

  it('an unknown name in events names the section, the bad names and the schema\'s own names', () => {
    const ini = [
      section('crm', 'schema = 3cx\nevents = ringing, foo'),
      section('old', 'schema = 3cx\nvariant = urlencoded\nevents = hangupincoming, Incoming'),
      section('pd', 'schema = petdesk\ntarget = queue\ncontainer_id = c\ntenant_id = t\nevents = queueEntered, ringAttempt'),
      section('vxt', 'schema = vxt\ndefault_country = US\nevents = calllog'),
      section('voip', 'schema = voip-request\nevents = ringing, hangup'),
    ].join('\n');
    expect(problems(YAML, ini)).toEqual([
      'config/webhooks.ini: [crm] events: unknown event "foo"; schema 3cx (variant json) sends: ringing, dialing, incomingcall_started, outgoingcall_started, incoming, outgoing, recording',
      'config/webhooks.ini: [old] events: unknown event "Incoming"; schema 3cx (variant urlencoded) sends: ringing, dialing, incomingcall_started, outgoingcall_started, incoming, outgoing, recording, hangupincoming, hangupoutgoing',
      'config/webhooks.ini: [pd] events: unknown event "ringAttempt"; schema petdesk (target queue) sends: queueEntered',
      'config/webhooks.ini: [vxt] events: unknown event "calllog"; schema vxt sends: callLog, voicemail',
      'config/webhooks.ini: [voip] events: unknown event "hangup"; schema voip-request sends: ringing, answered, ended',
    ]);
  });

  it('a VoipAppz webhook object lists only its own event', () => {
    const vz = (events: string) => section('vz', `schema = voipappz\nevent = Call:Hangup\nenvironments = default\nevents = ${events}`);
    expect(problems(YAML, vz('Call:Answer'))).toEqual([
      'config/webhooks.ini: [vz] events: lists "Call:Answer", but a VoipAppz webhook object fires only for its own event (Call:Hangup); list Call:Hangup or leave events empty',
    ]);
    expect(problems(YAML, vz('Call:Hangup, hangup'))).toEqual([
      'config/webhooks.ini: [vz] events: unknown event "hangup"; this VoipAppz webhook object sends only its event: Call:Hangup',
    ]);
    expect(parseConfig(YAML, vz('Call:Hangup'), { yamlPath: Y }, {}).endpoints[0]?.events).toEqual(['Call:Hangup']);
  });

  it('no recording_url has no default: 3CX listing "recording" is an error, and only 3CX and VoipAppz take the key', () => {
    expect(problems(YAML, section('crm', 'schema = 3cx\nevents = ringing, recording'))).toEqual([
      'config/webhooks.ini: [crm] recording_url: missing: events lists "recording", whose FileUrls are made from it; set where the PBX serves recordings (e.g. https://pbx.example.com/recordings/{file}) or leave "recording" out',
    ]);
    const cfg = parseConfig(YAML, section('crm', 'schema = 3cx') + section('vz', 'schema = voipappz\nevent = Call:Hangup\nenvironments = default'), { yamlPath: Y }, {});
    expect(cfg.endpoints.map((e) => 'recordingUrl' in e)).toEqual([false, false]);
    expect(explainConfig(cfg)).toContain('    recording_url: not set; no "recording" event is sent');
    expect(explainConfig(cfg)).toContain('    recording_url: not set; recording_url is sent as null');
    expect(problems(YAML, section('v', 'schema = vxt\ndefault_country = US\nrecording_url = https://pbx/{file}'))).toEqual([
      'config/webhooks.ini: [v] recording_url: unknown key; allowed here: schema, url, method, events, token, enabled, signing_secret, retry_on, only_dids, only_queues, only_ring_groups, only_extensions, only_directions, default_country, phone_number, web_url',
    ]);
  });

  it('reports every missing secret of both files and the environment in one run', () => {
    const yaml = YAML.replace('secret: from-file', '').replace('webhooks:', 'ops:\n  listen: 0.0.0.0:9464\nwebhooks:');
    const ini = section('crm', 'schema = 3cx\ntoken = env:CRM_TOKEN\nsigning_secret = env:CRM_SIGNING_SECRET\nevents = ringing, fo')
      + section('b', 'schema = 3cx\ntoken = file:/nonexistent/b.token');
    expect(problems(yaml, ini)).toEqual([
      'config/pbxhook.yaml: pbx.secret: missing (this key is required)',
      'config/webhooks.ini: [crm] events: unknown event "fo"; schema 3cx (variant json) sends: ringing, dialing, incomingcall_started, outgoingcall_started, incoming, outgoing, recording',
      'config/webhooks.ini: [crm] token: environment variable CRM_TOKEN is not set',
      'config/webhooks.ini: [crm] signing_secret: environment variable CRM_SIGNING_SECRET is not set',
      'config/webhooks.ini: [b] token: cannot read token file "/nonexistent/b.token" (ENOENT)',
      "config/pbxhook.yaml: ops.token: missing: ops.listen 0.0.0.0:9464 is not a loopback address, and /status.json shows callers' numbers; set ops.token (or PBXHOOK_OPS_TOKEN; env:NAME and file:PATH work too), or listen on 127.0.0.1",
    ]);
  });

  it('ops.listen off loopback needs ops.token; loopback needs none', () => {
    const ops = (lines: string) => YAML.replace('webhooks:', `ops:\n${lines}\nwebhooks:`);
    for (const listen of ['127.0.0.1:9464', '127.0.0.2:0', '[::1]:9464', 'localhost:9464']) {
      expect(parseConfig(ops(`  listen: "${listen}"`), INI, { yamlPath: Y }, {}).opsToken, listen).toBeUndefined();
    }
    for (const listen of ['0.0.0.0:9464', '[::]:9464', '10.1.2.3:9464', 'pbx.lan:9464']) {
      expect(problems(ops(`  listen: "${listen}"`), INI)[0], listen).toMatch(/^config\/pbxhook\.yaml: ops\.token: missing: ops\.listen /);
    }
    expect(parseConfig(ops('  enabled: false\n  listen: 0.0.0.0:9464'), INI, { yamlPath: Y }, {}).opsListen).toBeUndefined();
    const token = 'ops-token-0123456789';
    expect(parseConfig(ops('  listen: 0.0.0.0:9464\n  token: env:OPS'), INI, { yamlPath: Y }, { OPS: token }).opsToken).toBe(token);
    expect(parseConfig(ops('  listen: 0.0.0.0:9464'), INI, { yamlPath: Y }, { PBXHOOK_OPS_TOKEN: token }).opsToken).toBe(token);
    const read = (p: string) => (p === path.resolve('config/ops.token') ? `${token}\n` : '');
    expect(parseConfig(ops('  listen: 0.0.0.0:9464\n  token: file:ops.token'), INI, { yamlPath: Y, readSecretFile: read }, {}).opsToken).toBe(token);
    expect(problems(ops('  listen: 0.0.0.0:9464\n  token: short'), INI)).toEqual([
      'config/pbxhook.yaml: ops.token: value must be at least 16 characters, e.g. from: head -c 24 /dev/urandom | base64',
    ]);
    const cfg = parseConfig(ops(`  listen: 0.0.0.0:9464\n  token: ${token}`), INI, { yamlPath: Y }, {});
    expect(explainConfig(cfg)).toContain('metrics, health and status page: http://0.0.0.0:9464/, bearer token required but on /healthz');
    expect(explainConfig(cfg)).not.toContain(token);
    expect(JSON.stringify(redactConfig(cfg))).not.toContain(token);
  });
});

describe('the outbox on PostgreSQL and the PBX name (issue #17)', () => {
  const outbox = (lines: string) => YAML.replace('webhooks:', `outbox:\n${lines}\nwebhooks:`);
  const URL_WITH_PASSWORD = 'postgres://pbxhook:s3cret-pw@db.example:5432/pbxhook';

  it('store: postgres takes its url from the file, env:NAME, file:PATH or PBXHOOK_OUTBOX_URL, which wins', () => {
    expect(parseConfig(YAML, INI, { yamlPath: Y }, {}).outbox).toEqual({ store: 'sqlite' });
    const pg = (yaml: string, env: Record<string, string> = {}, read?: (p: string) => string) =>
      parseConfig(yaml, INI, { yamlPath: Y, ...(read ? { readSecretFile: read } : {}) }, env).outbox;
    expect(pg(outbox(`  store: postgres\n  url: ${URL_WITH_PASSWORD}`))).toEqual({ store: 'postgres', url: URL_WITH_PASSWORD });
    expect(pg(outbox('  store: postgres\n  url: env:DB'), { DB: URL_WITH_PASSWORD })).toEqual({ store: 'postgres', url: URL_WITH_PASSWORD });
    const read = (p: string) => (p === path.resolve('config/outbox-url') ? `${URL_WITH_PASSWORD}\n` : '');
    expect(pg(outbox('  store: postgres\n  url: file:outbox-url'), {}, read)).toEqual({ store: 'postgres', url: URL_WITH_PASSWORD });
    expect(pg(outbox('  store: postgres\n  url: postgres://other/db'), { PBXHOOK_OUTBOX_URL: URL_WITH_PASSWORD })).toEqual({ store: 'postgres', url: URL_WITH_PASSWORD });
  });

  it('names file, key and problem, never the URL: missing, not PostgreSQL, unread file, set while the store is sqlite', () => {
    expect(problems(outbox('  store: postgres'), INI)).toEqual([
      'config/pbxhook.yaml: outbox.url: missing: outbox.store is postgres; set outbox.url (or PBXHOOK_OUTBOX_URL; env:NAME and file:PATH work too)',
    ]);
    const wrong = problems(outbox('  store: postgres\n  url: mysql://root:s3cret-pw@db/x'), INI);
    expect(wrong).toEqual([expect.stringMatching(/^config\/pbxhook\.yaml: outbox\.url: value must be a PostgreSQL URL/)]);
    expect(wrong.join()).not.toContain('s3cret-pw');
    expect(problems(outbox('  store: postgres\n  url: env:NOPE'), INI)).toEqual(['config/pbxhook.yaml: outbox.url: environment variable NOPE is not set']);
    expect(problems(outbox(`  url: ${URL_WITH_PASSWORD}`), INI)).toEqual([
      'config/pbxhook.yaml: outbox.url: is set, but outbox.store is sqlite: set outbox.store: postgres to use it, or remove it',
    ]);
    expect(problems(outbox('  store: mysql'), INI)[0]).toMatch(/^config\/pbxhook\.yaml: outbox\.store: /);
  });

  it('check-config and the redacted config show where the outbox is, never the URL\'s password', () => {
    const cfg = parseConfig(outbox(`  store: postgres\n  url: ${URL_WITH_PASSWORD}`), INI, { yamlPath: Y }, {});
    expect(explainConfig(cfg)).toContain('delivery: outbox PostgreSQL db.example:5432/pbxhook, shared (url ***)');
    expect(explainConfig(cfg)).not.toContain('s3cret-pw');
    expect(JSON.stringify(redactConfig(cfg))).not.toContain('s3cret-pw');
  });

  it('pbx.name defaults to the host name (or "pbx") and must be a plain word', () => {
    expect(parseConfig(YAML, INI, { yamlPath: Y }, {}).pbx.name).toMatch(PBX_NAME);
    const named = YAML.replace('pbx:\n', 'pbx:\n  name: berlin-1\n');
    expect(parseConfig(named, INI, { yamlPath: Y }, {}).pbx.name).toBe('berlin-1');
    expect(explainConfig(parseConfig(named, INI, { yamlPath: Y }, {}))).toContain('  name: berlin-1 (');
    expect(problems(YAML.replace('pbx:\n', 'pbx:\n  name: "a b"\n'), INI)[0]).toMatch(/^config\/pbxhook\.yaml: pbx\.name: expected a name of letters/);
  });
});

describe('check-config shows every key it understood (issue #13)', () => {
  /** Keys every endpoint has, shown under their own words rather than `key:`. */
  const SHOWN_AS: Record<string, RegExp> = {
    schema: /^ {4}[a-z0-9-]+(\/\w+)?: (GET|POST) /m, url: /^ {4}[a-z0-9-]+(\/\w+)?: (GET|POST) \S+/m, method: /^ {4}\S+: (GET|POST) /m,
    variant: /^ {4}3cx\/(json|urlencoded): /m, events: /^ {4}events: /m, token: /^ {4}token: set$/m,
    signing_secret: /^ {4}signing: Standard Webhooks/m, retry_on: /^ {4}also retried: HTTP /m, enabled: /^ {2}\[.*\]( \(disabled\))?$/m,
  };

  it.each([
    ['webhooks.ini.example', 'config/pbxhook.example.yaml'],
    ['config/all-schemas.webhooks.ini', 'config/all-schemas.example.yaml'],
  ])('every key set in %s, the schema-specific ones included', (ini, yaml) => {
    const env = { CRM_TOKEN: 't', CRM_SIGNING_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}` };
    const iniText = readFileSync(ini, 'utf8');
    const text = explainConfig(parseConfig(readFileSync(yaml, 'utf8'), iniText, { yamlPath: yaml }, env));
    const { sections } = readIniSections(iniText, ini);
    expect(sections.size).toBeGreaterThan(4);
    for (const [name, keys] of sections) {
      const block = text.slice(text.indexOf(`  [${name}]`)).split(/\n(?= {2}\[)/)[0]!;
      for (const key of Object.keys(keys)) {
        const shown = SHOWN_AS[key] ?? new RegExp(`(^ {4}|, )${key}: `, 'm');
        expect(block, `[${name}] ${key}`).toMatch(shown);
      }
    }
  });

  it('the event names config accepts are every name the renderers send: listing them all changes nothing', async () => {
    const cfg = loadConfig('config/all-schemas.example.yaml', {});
    const listed = { ...cfg, endpoints: cfg.endpoints.map((e) => ({ ...e, events: eventNamesOf(e) })) };
    const traces = ['in-queue-answered', 'in-voicemail', 'out-answered', 'in-queue-blind-transfer', 'in-busy'].map((t) => `test/fixtures/asterisk/${t}.ami`);
    traces.push('test/fixtures/asterisk-synth/in-message.ami', 'test/fixtures/asterisk-synth/in-queue-attended-transfer.ami');
    for (const trace of traces) {
      const all = (await replayTrace(trace, cfg)).lines;
      expect(all.length, trace).toBeGreaterThan(0);
      expect((await replayTrace(trace, listed)).lines, trace).toEqual(all);
    }
  });
});
