// Label placement for a crowded scatter plot (the trade-off lens): each label goes next to its own point
// where it meets no mark, obstacle, label or leader line already placed, and reads as its own point's.
// Pure geometry on SVG px; the text width is measured as the figures measure it (textWidth).
import { SMALL_FONT_PX, textWidth } from './LensFigure.tsx';

/** An axis-aligned box in SVG px. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const boxesIntersect = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
export const boxInside = (a: Box, b: Box) => a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1;

/** A point's mark on the plot: its centre and half its size (dense's ring is larger). */
export interface Mark {
  x: number;
  y: number;
  r: number;
}

export interface LabelRequest extends Mark {
  id: string;
  text: string;
  /** May stand away from its point, tied to it by a leader line (the labels that must show). */
  leader?: boolean;
  /** Marks of other points this label also names (the same mode of another model, drawn on top of this one). */
  also?: readonly Mark[];
}

export interface PlacedLabel {
  id: string;
  text: string;
  /** Where the <text> goes: x with textAnchor `anchor`, y its baseline. */
  x: number;
  y: number;
  anchor: 'start' | 'middle' | 'end';
  /** The space the text takes at its widest likely face (textWidth), plus 1 px all round. */
  box: Box;
  /** The line from the mark to the label, when the label stands away from its point. */
  leader?: { x1: number; y1: number; x2: number; y2: number };
}

/** How much further than next to the point a leader-lined label may stand, px, nearest first. */
const LEADER_STEPS = [10, 22, 34, 46];

/** How much nearer (px) a label must be to its own mark than to any other, unless it has a leader. */
const NEAR_MARGIN = 2;

const distanceToBox = (x: number, y: number, b: Box) =>
  Math.hypot(Math.max(b.x0 - x, 0, x - b.x1), Math.max(b.y0 - y, 0, y - b.y1));

/** Whether the segment (x1, y1)–(x2, y2) passes through the inside of `b` (Liang–Barsky clipping). */
export function segmentHitsBox(s: { x1: number; y1: number; x2: number; y2: number }, b: Box): boolean {
  const dx = s.x2 - s.x1;
  const dy = s.y2 - s.y1;
  let t0 = 0;
  let t1 = 1;
  for (const [p, q] of [
    [-dx, s.x1 - b.x0],
    [dx, b.x1 - s.x1],
    [-dy, s.y1 - b.y0],
    [dy, b.y1 - s.y1],
  ]) {
    if (p === 0) {
      if (q <= 0) return false;
    } else {
      const t = q / p;
      if (p < 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
      if (t0 >= t1) return false;
    }
  }
  return true;
}

/**
 * Labels placed greedily in the order asked. Each tries eight spots next to its point (upper right
 * first, then right, lower right, the same on the left, above, below), taking one only where its own
 * mark is the nearest to the label, so no label reads as another point's; a request with `leader`
 * then tries spots further above or below (LEADER_STEPS, straight over the point, then to its right,
 * then its left) joined to the point by a line. A spot must lie in `bounds` and meet no mark, no
 * obstacle (the legend), no label and no leader line already placed, and its leader none of those
 * either; a label with no free spot is left off. Same input, same output; no two returned boxes
 * intersect.
 */
export function placeLabels(
  requests: readonly LabelRequest[],
  marks: readonly Mark[],
  obstacles: readonly Box[],
  bounds: Box,
  fontPx = SMALL_FONT_PX,
): PlacedLabel[] {
  const ascent = 0.8 * fontPx;
  const descent = 0.25 * fontPx;
  const placed: PlacedLabel[] = [];
  const taken: Box[] = [
    ...marks.map((m) => ({ x0: m.x - m.r, y0: m.y - m.r, x1: m.x + m.r, y1: m.y + m.r })),
    ...obstacles,
  ];
  const leaders: NonNullable<PlacedLabel['leader']>[] = [];
  const free = (b: Box) => !taken.some((o) => boxesIntersect(o, b)) && !leaders.some((l) => segmentHitsBox(l, b));
  for (const q of requests) {
    const w = textWidth(q.text, fontPx);
    const g = q.r + 2;
    const own = (m: Mark) => [q, ...(q.also ?? [])].some((o) => Math.abs(m.x - o.x) < 0.5 && Math.abs(m.y - o.y) < 0.5);
    const nearestIsOwn = (b: Box) => {
      const mine = distanceToBox(q.x, q.y, b) - q.r;
      return marks.every((m) => own(m) || distanceToBox(m.x, m.y, b) - m.r >= mine + NEAR_MARGIN);
    };
    const mid = q.y + (ascent - descent) / 2; // baseline that centres the text on the point
    const spots: [number, number, PlacedLabel['anchor'], boolean][] = [
      [q.x + g, q.y - g, 'start', false],
      [q.x + g, mid, 'start', false],
      [q.x + g, q.y + g + ascent - descent, 'start', false],
      [q.x - g, q.y - g, 'end', false],
      [q.x - g, mid, 'end', false],
      [q.x - g, q.y + g + ascent - descent, 'end', false],
      [q.x, q.y - q.r - 1 - descent, 'middle', false],
      [q.x, q.y + q.r + 1 + ascent, 'middle', false],
    ];
    if (q.leader)
      for (const d of LEADER_STEPS)
        for (const side of [0, 1, -1])
          for (const up of [true, false]) {
            const x = q.x + side * (w / 2 + 4);
            spots.push([x, up ? q.y - q.r - d - 1 - descent : q.y + q.r + d + 1 + ascent, 'middle', true]);
          }
    for (const [x, y, anchor, far] of spots) {
      const left = anchor === 'start' ? x : anchor === 'end' ? x - w : x - w / 2;
      const box = { x0: left - 1, y0: y - ascent - 1, x1: left + w + 1, y1: y + descent + 1 };
      if (!boxInside(box, bounds) || !free(box)) continue;
      if (!far && !nearestIsOwn(box)) continue;
      let leader: PlacedLabel['leader'];
      if (far) {
        // From just off the mark to the nearest point of the label's box; only the part clear of
        // the mark's own square is checked against the rest.
        const cx = Math.min(Math.max(q.x, box.x0), box.x1);
        const cy = Math.min(Math.max(q.y, box.y0), box.y1);
        const len = Math.hypot(cx - q.x, cy - q.y);
        const at = (t: number) => [q.x + ((cx - q.x) * t) / len, q.y + ((cy - q.y) * t) / len];
        const [sx, sy] = at(q.r + 1);
        const [tx, ty] = at(q.r * Math.SQRT2 + 0.5);
        const clear = { x1: tx, y1: ty, x2: cx, y2: cy };
        if (taken.some((o) => segmentHitsBox(clear, o))) continue;
        leader = { x1: sx, y1: sy, x2: cx, y2: cy };
        leaders.push(leader);
      }
      placed.push({ id: q.id, text: q.text, x, y, anchor, box, leader });
      taken.push(box);
      break;
    }
  }
  return placed;
}
