import { DEFAULT_ROLES } from '../src/core/roles.js';
import { Pipeline } from '../src/pipeline.js';

/**
 * The pipeline the in-process memory benches measure: one 3CX endpoint, calls idle for up to
 * 4 h, UTC (no ICU time-zone data), as a default install renders them.
 */
export function benchPipeline(): Pipeline {
  return new Pipeline({
    roles: DEFAULT_ROLES,
    calls: { idleTimeoutSeconds: 14_400, timezone: 'UTC' },
    endpoints: [{ name: 'crm', enabled: true, schema: '3cx', url: 'http://127.0.0.1:9/3cx', method: 'POST', variant: 'json', events: [], recordingUrl: 'https://pbx.example.com/recordings/{file}' }],
    directory: {},
    environment: 'default',
  });
}
