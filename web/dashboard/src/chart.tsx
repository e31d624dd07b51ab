// One uPlot chart of one series: drag to zoom (double-click resets), the legend shows the value
// under the cursor; the points are also listed in a table (collapsed) for keyboard and screen readers.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatValue, type MetricInfo } from './metrics';

/** Axis numbers: 100000 -> 100K. */
const COMPACT = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

/** Props of {@link Chart}. */
export interface ChartProps {
  info: MetricInfo;
  /** Times (ms, ascending) and values. */
  t: number[];
  v: number[];
  /** Bumped when points were appended to `t`/`v` in place. */
  version: number;
  /** The requested range (ms): the x axis spans it until the user zooms. */
  from: number;
  to: number;
}

/** A line chart of one metric. */
export function Chart({ info, t, v, version, from, to }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [showTable, setShowTable] = useState(false);

  /** The unzoomed x range (s): the requested range, extended to the newest appended point. */
  const home = useRef({ min: from / 1000, max: to / 1000 });

  useEffect(() => {
    const el = box.current!;
    home.current = { min: from / 1000, max: to / 1000 };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 180,
      cursor: {
        drag: { x: true, y: false },
        // Double-click resets the zoom to the requested range (uPlot's own reset fits the data,
        // which for a few points is no range at all).
        bind: {
          dblclick: (u) => () => {
            u.setScale('x', home.current);
            return null;
          },
        },
      },
      scales: { x: { time: true } },
      // The visible range, on the figure: a zoom (drag) or its reset (double-click) shows in the DOM.
      hooks: {
        setScale: [
          (u, key) => {
            const figure = el.parentElement;
            const { min, max } = u.scales.x ?? {};
            if (key !== 'x' || !figure || min == null || max == null) return;
            figure.dataset.xMin = new Date(min * 1000).toISOString();
            figure.dataset.xMax = new Date(max * 1000).toISOString();
          },
        ],
      },
      axes: [
        { stroke: '#333' },
        { stroke: '#333', size: 56, values: (_u, splits) => splits.map((x) => COMPACT.format(x)) },
      ],
      series: [
        {},
        {
          label: info.unit ? `${info.label} (${info.unit})` : info.label,
          stroke: '#1f5fbf',
          width: 1.5,
          points: { show: t.length < 60 },
          value: (_u, value) => formatValue(value ?? undefined, info.unit),
        },
      ],
    };
    const u = new uPlot(opts, [t.map((x) => x / 1000), v], el);
    u.setScale('x', { min: from / 1000, max: to / 1000 });
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [info.field]);

  // Appended points: keep the user's zoom; an unzoomed chart follows the newest point.
  useEffect(() => {
    const u = plot.current;
    if (!u || version === 0) return;
    const { min, max } = u.scales.x ?? {};
    const following = max === undefined || max >= to / 1000;
    u.setData([t.map((x) => x / 1000), v], false);
    const newest = (t[t.length - 1] ?? to) / 1000;
    home.current = { min: home.current.min, max: Math.max(to / 1000, newest) };
    if (following) u.setScale('x', { min: min ?? from / 1000, max: home.current.max });
  }, [version]);

  return (
    <figure class="chart" data-metric={info.field} data-points={t.length}>
      <figcaption>
        {info.label} <span class="muted">{info.field}</span>
      </figcaption>
      <div ref={box} class="plot" />
      <details onToggle={(e) => setShowTable(e.currentTarget.open)}>
        <summary>Values ({t.length})</summary>
        {showTable ? (
          <table class="points">
            <thead>
              <tr>
                <th scope="col">time</th>
                <th scope="col">value</th>
              </tr>
            </thead>
            <tbody>
              {t.map((time, i) => (
                <tr key={i}>
                  <td>{new Date(time).toISOString()}</td>
                  <td>{v[i]}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </details>
    </figure>
  );
}
