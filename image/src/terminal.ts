/**
 * A block of live lines at the bottom of a terminal (one per transfer in progress), redrawn in place,
 * with ordinary lines printed above it.
 *
 * Written here rather than taken from a library: log-update and ansi-escapes, the usual choices, are
 * ESM-only (a CommonJS runner can require() them only from Node 20.19/22.12, and image/tsconfig's
 * resolution does not read their exports), and cli-progress, which is CommonJS, draws bars towards a
 * known total (a dump's size is not known until it ends), holds logged lines back until its next
 * redraw, and keeps the process alive with a redraw timer that is not unref'd. What is needed is two
 * VT100 sequences, below.
 */

/** Cursor up `n` lines (CUU) to the block's first line; erase from there to the end of the screen (ED). */
const up = (n: number) => `\x1b[${n}A`;
const eraseDown = "\x1b[J";

export class LiveDisplay {
  private readonly lines = new Map<string, string>();
  /** How many live lines are on the screen now, the cursor at the start of the line below them. */
  private drawn = 0;

  /**
   * @param write sends text to the terminal (one call per update, so the terminal never shows half a redraw)
   * @param columns the terminal's width: a live line is cut to fit, since one that wrapped would take
   *   two rows and the redraw would then erase one line too few
   */
  constructor(
    private readonly write: (text: string) => void,
    private readonly columns: () => number | undefined,
  ) {}

  /** Prints `line` above the live lines, which stay below it. */
  print(line: string): void {
    this.write(this.erase() + line + "\n" + this.draw());
  }

  /** Shows `text` as the live line `id`, in place of its previous text (a new id goes last). */
  set(id: string, text: string): void {
    this.lines.set(id, text);
    this.write(this.erase() + this.draw());
  }

  /** Removes the live line `id`. */
  delete(id: string): void {
    if (this.lines.delete(id)) this.write(this.erase() + this.draw());
  }

  private erase(): string {
    const text = this.drawn > 0 ? up(this.drawn) + eraseDown : "";
    this.drawn = 0;
    return text;
  }

  private draw(): string {
    // One column spare: a line that fills the last column leaves some terminals' cursor on it. A
    // terminal that reports no width (0, as a pseudo-terminal without a size does) gets 80.
    const width = (this.columns() || 80) - 1;
    this.drawn = this.lines.size;
    return [...this.lines.values()].map((line) => [...line].slice(0, width).join("") + "\n").join("");
  }
}
