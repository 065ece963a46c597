/**
 * Hand-written SVG bar charts for compare.mjs: one chart per scenario, one panel per metric,
 * one horizontal bar per broker (the median over rounds) with a whisker from the lowest to the
 * highest round. No dependencies; the SVG opens in any browser and renders on GitHub.
 */

const WIDTH = 760;
const LABEL_W = 110;
const VALUE_W = 120;
const BAR_H = 20;
const GAP = 6;
const PANEL_HEAD = 34;
const PANEL_GAP = 14;
const TITLE_H = 40;

const PALETTE = {
  mosquitto: '#3b6fb6',
  aedes: '#d9822b',
  null: '#888888',
};
const TERN_SHADES = ['#2f9e5a', '#1d6b3c', '#63c184', '#0f4727', '#8fd6a8'];

/** Colour per broker name: fixed for Mosquitto and Aedes, greens for Tern variants in order. */
export function colours(brokers) {
  const out = {};
  let k = 0;
  for (const b of brokers) out[b] = PALETTE[b] ?? TERN_SHADES[k++ % TERN_SHADES.length];
  return out;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

/**
 * @param {string} title
 * @param {{ label: string, lowerBetter: boolean, format: (x: number) => string,
 *           bars: { broker: string, median: number|null, min: number|null, max: number|null, note?: string }[] }[]} panels
 * @param {Record<string, string>} colourOf
 * @param {string} [subtitle]
 */
export function barChart(title, panels, colourOf, subtitle = '') {
  const plotW = WIDTH - LABEL_W - VALUE_W - 20;
  let y = TITLE_H + (subtitle ? 16 : 0);
  const parts = [];
  for (const p of panels) {
    const top = Math.max(0, ...p.bars.map((b) => Math.max(b.max ?? 0, b.median ?? 0)));
    const scale = top > 0 ? plotW / top : 0;
    parts.push(
      `<text x="10" y="${y + 20}" class="metric">${esc(p.label)}<tspan class="hint" dx="6">(${p.lowerBetter ? 'lower' : 'higher'} is better)</tspan></text>`,
    );
    let by = y + PANEL_HEAD;
    for (const b of p.bars) {
      const c = colourOf[b.broker] ?? '#999999';
      parts.push(
        `<text x="${LABEL_W - 8}" y="${by + BAR_H * 0.72}" class="name" text-anchor="end">${esc(b.broker)}</text>`,
      );
      if (b.median === null || b.median === undefined) {
        parts.push(
          `<text x="${LABEL_W + 4}" y="${by + BAR_H * 0.72}" class="value">${esc(b.note ?? 'no result')}</text>`,
        );
      } else {
        const w = Math.max(1, b.median * scale);
        parts.push(
          `<rect x="${LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${c}" rx="2"><title>${esc(`${b.broker}: ${p.format(b.median)}`)}</title></rect>`,
        );
        if (b.min !== null && b.max !== null && b.max > b.min) {
          const x1 = LABEL_W + b.min * scale;
          const x2 = LABEL_W + b.max * scale;
          const my = by + BAR_H / 2;
          parts.push(
            `<path d="M${x1.toFixed(1)} ${my}H${x2.toFixed(1)}M${x1.toFixed(1)} ${my - 5}V${my + 5}M${x2.toFixed(1)} ${my - 5}V${my + 5}" class="whisker"/>`,
          );
        }
        const vx = LABEL_W + Math.max(w, (b.max ?? 0) * scale) + 6;
        parts.push(
          `<text x="${vx.toFixed(1)}" y="${by + BAR_H * 0.72}" class="value">${esc(p.format(b.median))}</text>`,
        );
      }
      by += BAR_H + GAP;
    }
    y = by + PANEL_GAP;
  }
  const height = y + 18;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:17px;font-weight:bold;fill:#222}.sub{font-size:12px;fill:#555}.metric{font-size:14px;font-weight:bold;fill:#333}.hint{font-weight:normal;fill:#777;font-size:12px}.name{font-size:13px;fill:#333}.value{font-size:12px;fill:#222}.whisker{stroke:#222;stroke-width:1.2;fill:none}.foot{font-size:11px;fill:#777}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="26" class="title">${esc(title)}</text>`,
    subtitle ? `<text x="10" y="${TITLE_H + 6}" class="sub">${esc(subtitle)}</text>` : '',
    ...parts,
    `<text x="10" y="${height - 6}" class="foot">bar: median over rounds; whisker: lowest to highest round</text>`,
    '</svg>',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}
