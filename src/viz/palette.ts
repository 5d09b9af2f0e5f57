// One meaning per colour: expert identity uses the categorical Tableau 10 palette (colour-blind
// safer than d3's category10); probability and loss use greys only, so they never read as an expert.
import { interpolateGreys, rgb, scaleSequential, schemeTableau10 } from 'd3';
import type { TokenRouting } from '../engine/types.ts';

/** Colour of expert e. Beyond 10 experts colours repeat, which is why every view also prints the number. */
export function expertColor(e: number): string {
  return schemeTableau10[e % schemeTableau10.length];
}

/** Black or white, whichever has the higher WCAG contrast ratio on `background`. */
export function inkOn(background: string): string {
  const c = rgb(background);
  const channel = (v: number) => {
    const x = v / 255;
    return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  // Contrast with white: 1.05 / (L + 0.05); with black: (L + 0.05) / 0.05.
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? '#111' : '#fff';
}

/** Probability 0..1 → grey (white = 0, black = 1). */
export const probabilityColor = scaleSequential(interpolateGreys).domain([0, 1]);

/** A token's text as it should appear in a chip: whitespace made visible, never markup. */
export function showToken(text: string): string {
  return text.replace(/\n/g, '⏎').replace(/\t/g, '⇥').replace(/^ /, '·').replace(/ /g, '·') || '∅';
}

/** How one routed token is drawn, on the screen and in every export: its box colour, the ink on it, and the number beneath. */
export interface TokenMark {
  /** The first-choice expert's colour blended towards white by (1 − gate weight), so a weak gate reads pale; grey when unrouted. */
  fill: string;
  /** Black or white, whichever reads better on `fill`. */
  ink: string;
  /** The first-choice expert's number, or '–'. */
  expertLabel: string;
  expert: number | undefined;
}

export function tokenMark(routing: TokenRouting | undefined): TokenMark {
  const expert = routing?.experts[0];
  if (expert === undefined) return { fill: '#eeeeee', ink: inkOn('#eeeeee'), expertLabel: '–', expert };
  const c = rgb(expertColor(expert));
  const w = 0.25 + 0.75 * Math.max(0, Math.min(1, routing?.weights[0] ?? 0));
  const fill = `rgb(${Math.round(255 - (255 - c.r) * w)}, ${Math.round(255 - (255 - c.g) * w)}, ${Math.round(255 - (255 - c.b) * w)})`;
  return { fill, ink: inkOn(fill), expertLabel: String(expert), expert };
}
