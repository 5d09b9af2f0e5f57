// One meaning per colour: expert identity uses the categorical Tableau 10 palette (colour-blind
// safer than d3's category10); probability and loss use greys only, so they never read as an expert.
import { interpolateGreys, rgb, scaleSequential, schemeTableau10 } from 'd3';

/** Colour of expert e. Beyond 10 experts colours repeat, which is why every view also prints the number. */
export function expertColor(e: number): string {
  return schemeTableau10[e % schemeTableau10.length];
}

/** Black or white, whichever reads better on `background`. */
export function inkOn(background: string): string {
  const c = rgb(background);
  const luminance = (0.299 * c.r + 0.587 * c.g + 0.114 * c.b) / 255;
  return luminance > 0.6 ? '#111' : '#fff';
}

/** Probability 0..1 → grey (white = 0, black = 1). */
export const probabilityColor = scaleSequential(interpolateGreys).domain([0, 1]);

/** A token's text as it should appear in a chip: whitespace made visible, never markup. */
export function showToken(text: string): string {
  return text.replace(/\n/g, '⏎').replace(/\t/g, '⇥').replace(/^ /, '·').replace(/ /g, '·') || '∅';
}
