/**
 * One AMI message as a flat record. Keys are lower-cased (AMI keys arrive in odd case:
 * "CallerIDnum", "UniqueID"), the first value of a repeated key wins, and repeated
 * `Variable:`/`ChanVariable:` lines of the form `name=value` are collected in `vars`.
 * A lone `Variable: NAME` (VarSet) stays in `variable`.
 * The framer produces this shape for replay and the live client alike, so everything downstream
 * is shared.
 */
export interface AmiFrame {
  readonly fields: Readonly<Record<string, string>>;
  readonly vars?: Readonly<Record<string, string>>;
}

/** Field accessor; keys are lower-case. Returns "" for a missing field. */
export function field(frame: AmiFrame, key: string): string {
  return frame.fields[key] ?? '';
}
