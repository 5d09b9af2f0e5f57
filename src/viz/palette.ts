// One meaning per colour: expert identity uses the categorical Tableau 10 palette (colour-blind
// safer than d3's category10); probability and loss use greys only, so they never read as an expert.
import { interpolateGreys, rgb, scaleSequential, schemeTableau10 } from 'd3';

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
