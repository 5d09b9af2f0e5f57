// Export a view as a standalone SVG (styles inlined, so it looks the same outside the page) and as
// a PNG drawn from that SVG at 2× for slides. DOM code: runs in the page only.
import type { RunState } from '../state/store.ts';
import { showToken, tokenMark } from './palette.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** The presentation properties the views use; each is copied from the computed style onto the clone. */
const STYLE_PROPS = [
  'fill',
  'fill-opacity',
  'stroke',
  'stroke-width',
  'stroke-dasharray',
  'opacity',
  'font-family',
  'font-size',
  'font-weight',
  'text-anchor',
  'dominant-baseline',
  'visibility',
];

/** Clone `svg` with every element's computed presentation styles written inline; adds xmlns and a white background. */
export function standaloneSvg(svg: SVGSVGElement, title: string): string {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const originals = [svg, ...Array.from(svg.querySelectorAll('*'))];
  const copies = [clone, ...Array.from(clone.querySelectorAll('*'))];
  originals.forEach((el, i) => {
    const computed = getComputedStyle(el);
    const style = STYLE_PROPS.map((p) => `${p}:${computed.getPropertyValue(p)}`).join(';');
    copies[i].setAttribute('style', style);
    copies[i].removeAttribute('class');
  });
  const width = svg.width.baseVal.value || svg.getBoundingClientRect().width;
  const height = svg.height.baseVal.value || svg.getBoundingClientRect().height;
  clone.setAttribute('xmlns', SVG_NS);
  clone.setAttribute('width', String(width));
  clone.setAttribute('height', String(height));
  clone.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const background = document.createElementNS(SVG_NS, 'rect');
  background.setAttribute('width', '100%');
  background.setAttribute('height', '100%');
  background.setAttribute('fill', '#ffffff');
  clone.insertBefore(background, clone.firstChild);
  const titleEl = document.createElementNS(SVG_NS, 'title');
  titleEl.textContent = title;
  clone.insertBefore(titleEl, clone.firstChild);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(clone)}`;
}

function escapeXml(text: string): string {
  return text
    .replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '�');
}

/** The routed text (an HTML view on the page) drawn as SVG with the page's own marks (tokenMark): one box per token, expert number beneath. */
export function tokenTextSvg(run: RunState, layer: number, title: string): string {
  const rows = run.trace.layers[layer] ?? [];
  const maxWidth = 900;
  const charW = 8.4;
  const boxH = 34;
  let x = 8;
  let y = 8;
  const parts: string[] = [];
  run.tokenTexts.forEach((text, i) => {
    const label = showToken(text);
    const w = Math.max(22, label.length * charW + 8);
    if (x + w > maxWidth) {
      x = 8;
      y += boxH + 6;
    }
    const { fill, ink, expertLabel } = tokenMark(rows[i]);
    parts.push(
      `<g transform="translate(${x},${y})"><rect width="${w}" height="${boxH}" rx="4" fill="${fill}"/>` +
        `<text x="${w / 2}" y="15" text-anchor="middle" font-family="monospace" font-size="14" fill="${ink}">${escapeXml(label)}</text>` +
        `<text x="${w / 2}" y="29" text-anchor="middle" font-family="sans-serif" font-size="10" fill="${ink}">${expertLabel}</text></g>`,
    );
    x += w + 4;
  });
  const height = y + boxH + 8;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="${SVG_NS}" width="${maxWidth}" height="${height}" viewBox="0 0 ${maxWidth} ${height}"><title>${escapeXml(title)}</title><rect width="100%" height="100%" fill="#ffffff"/>${parts.join('')}</svg>`;
}

/** Rasterises SVG text at `scale`× into a PNG blob. */
export async function svgToPng(svgText: string, scale = 2): Promise<Blob> {
  const url = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = Math.ceil(image.naturalWidth * scale);
    canvas.height = Math.ceil(image.naturalHeight * scale);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('This browser cannot draw a PNG (no 2D canvas).');
    ctx.scale(scale, scale);
    ctx.drawImage(image, 0, 0);
    return await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('The PNG could not be encoded.'))), 'image/png'),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}

export function download(name: string, data: Blob | string, type: string): void {
  const blob = typeof data === 'string' ? new Blob([data], { type }) : data;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
