/** RE2 syntax for a literal string. */
export function quoteRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}
