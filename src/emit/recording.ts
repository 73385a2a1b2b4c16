/**
 * A recording's URL from an endpoint's `recording_url` template (config key, see
 * src/config/schema.ts RECORDING_PLACEHOLDERS): `{file}` the file name, `{path}` its full path on
 * the PBX, `{id}` the schema's call id, `{n}` the file's 1-based number.
 */
export function recordingUrl(template: string, file: string, id: string, n: number): string {
  const base = file.slice(file.lastIndexOf('/') + 1);
  return template
    .replaceAll('{file}', encodeURIComponent(base))
    .replaceAll('{path}', file)
    .replaceAll('{id}', id)
    .replaceAll('{n}', String(n));
}
