/**
 * The floor of issue #7: read the same bytes and build a key/value object for every frame with
 * the simplest split loop. Anything that parses AMI at all does at least this much.
 */
export function floorParse(chunk: Buffer, carry: string): { frames: number; carry: string } {
  const text = carry + chunk.toString('utf8');
  const blocks = text.split('\r\n\r\n');
  const rest = blocks.pop() ?? '';
  let frames = 0;
  for (const block of blocks) {
    const obj: Record<string, string> = {};
    for (const line of block.split('\r\n')) {
      const i = line.indexOf(': ');
      if (i > 0) obj[line.slice(0, i)] = line.slice(i + 2);
    }
    if (obj['Event'] !== undefined) frames++;
  }
  return { frames, carry: rest };
}
