/** Character codes the tries look at. */
export const PLUS = 0x2b; // '+' single-level wildcard
export const HASH = 0x23; // '#' multi-level wildcard
export const DOLLAR = 0x24; // '$' starts server topics such as $SYS

/**
 * Filters whose first level is a wildcard never match topic names starting with '$'
 * [MQTT-4.7.2-1], so `#` does not deliver `$SYS/...` to everyone.
 */
export function startsWithDollar(s: string): boolean {
  return s.length > 0 && s.charCodeAt(0) === DOLLAR;
}
