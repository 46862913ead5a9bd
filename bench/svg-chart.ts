/**
 * A small SVG line chart: linear axes from zero with rounded ticks, one
 * polyline with point markers per series, and a legend. Enough for the
 * harness's curves (memory against agents, latency against load) without a
 * charting dependency.
 */

export interface Series {
  readonly label: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  /** Drawn dashed, for limits and goals. */
  readonly dashed?: boolean;
}

export interface ChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
}

const width = 720;
const height = 420;
const margin = { left: 72, right: 24, top: 40, bottom: 56 };
const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

/** Renders the chart as a standalone SVG document. */
export function lineChart(spec: ChartSpec): string {
  const finite = spec.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xMax = niceCeiling(Math.max(1, ...finite.map(([x]) => x)));
  const yMax = niceCeiling(Math.max(1, ...finite.map(([, y]) => y)));
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sx = (x: number) => margin.left + (x / xMax) * plotW;
  const sy = (y: number) => margin.top + plotH - (y / yMax) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeText(spec.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">` +
      `${escapeText(spec.title)}</text>`,
    ...axes(xMax, yMax, sx, sy, spec),
  ];
  spec.series.forEach((series, index) => {
    parts.push(...seriesMarks(series, colours[index % colours.length]!, sx, sy));
    parts.push(...legendEntry(series, colours[index % colours.length]!, index));
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function axes(
  xMax: number,
  yMax: number,
  sx: (x: number) => number,
  sy: (y: number) => number,
  spec: ChartSpec,
): string[] {
  const out: string[] = [];
  const bottom = sy(0);
  for (let i = 0; i <= 5; i += 1) {
    const x = (xMax * i) / 5;
    const y = (yMax * i) / 5;
    out.push(
      `<line x1="${sx(x)}" y1="${margin.top}" x2="${sx(x)}" y2="${bottom}" stroke="#eee"/>`,
      `<text x="${sx(x)}" y="${bottom + 18}" text-anchor="middle">${tick(x)}</text>`,
      `<line x1="${margin.left}" y1="${sy(y)}" x2="${sx(xMax)}" y2="${sy(y)}" stroke="#eee"/>`,
      `<text x="${margin.left - 8}" y="${sy(y) + 4}" text-anchor="end">${tick(y)}</text>`,
    );
  }
  out.push(
    `<line x1="${margin.left}" y1="${bottom}" x2="${sx(xMax)}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" ` +
      `y2="${bottom}" stroke="#333"/>`,
    `<text x="${(margin.left + sx(xMax)) / 2}" y="${height - 14}" text-anchor="middle">` +
      `${escapeText(spec.xLabel)}</text>`,
    `<text transform="translate(18 ${(margin.top + bottom) / 2}) rotate(-90)" ` +
      `text-anchor="middle">${escapeText(spec.yLabel)}</text>`,
  );
  return out;
}

function seriesMarks(
  series: Series,
  colour: string,
  sx: (x: number) => number,
  sy: (y: number) => number,
): string[] {
  const points = series.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const path = points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
  const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
  return [
    `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${path}"/>`,
    ...points.map(
      ([x, y]) =>
        `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${colour}"/>`,
    ),
  ];
}

function legendEntry(series: Series, colour: string, index: number): string[] {
  const x = margin.left + 12;
  const y = margin.top + 12 + index * 18;
  const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
  return [
    `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" ` +
      `stroke="${colour}" stroke-width="2"${dash}/>`,
    `<text x="${x + 30}" y="${y + 4}">${escapeText(series.label)}</text>`,
  ];
}

/** The smallest 1, 2 or 5 × 10^k at or above `value`. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function tick(value: number): string {
  if (value >= 1_000) return `${Number((value / 1_000).toFixed(1))}k`;
  return String(Number(value.toFixed(2)));
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
