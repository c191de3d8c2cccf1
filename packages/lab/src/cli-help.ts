import { readFileSync } from 'node:fs';

/**
 * A command's --help: lines 2 to `last` of its source file's header comment (the
 * compiled file keeps it), without the comment's ` * ` margins.
 */
export function headerHelp(file: string, last: number): string {
  return `${readFileSync(file, 'utf8')
    .split('\n')
    .slice(1, last)
    .join('\n')
    .replace(/^ \*\/?/gm, '')}\n`;
}
