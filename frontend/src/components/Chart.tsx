/** A small time-series chart (uPlot: fast canvas rendering, ~45 kB; loaded with the pages that use it). */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
  unit?: string;
}

export function Chart({ x, xLabels, series, height = 220, onPick }: { x: number[]; xLabels?: string[]; series: Series[]; height?: number; onPick?: (index: number) => void }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const box = el.current;
    if (!box) return;
    const css = getComputedStyle(document.documentElement);
    const axis = css.getPropertyValue("--muted").trim() || "#888";
    const grid = css.getPropertyValue("--border").trim() || "#ddd";
    const opts: uPlot.Options = {
      width: box.clientWidth || 600,
      height,
      scales: { x: { time: false } },
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, values: (_u, ticks) => ticks.map((t) => (xLabels ? (xLabels[t] ?? "") : String(t))) },
        // one axis per scale (unit), the first on the left, the second on the right
        ...[...new Set(series.map((s) => s.unit ?? s.label))].slice(0, 2).map((scale, i) => ({
          stroke: axis,
          grid: { show: i === 0, stroke: grid, width: 1 },
          scale,
          side: i === 0 ? 3 : 1,
          size: 60,
          label: scale === "s" ? "seconds" : scale,
          labelSize: 18,
        })),
      ],
      series: [
        { label: "flow", value: (_u: uPlot, v: number) => (v === null || v === undefined ? "" : (xLabels?.[v] ?? String(v))) },
        ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, scale: s.unit ?? s.label, points: { show: true, size: 5 }, spanGaps: false })),
      ],
      hooks: onPick
        ? {
            ready: [
              (u: uPlot) => {
                u.over.addEventListener("click", () => {
                  const i = u.cursor.idx;
                  if (i !== null && i !== undefined) onPick(i);
                });
              },
            ],
          }
        : {},
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, box);
    const ro = new ResizeObserver(() => plot.setSize({ width: box.clientWidth, height }));
    ro.observe(box);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [x, xLabels, series, height, onPick]);
  return <div ref={el} className="chart" />;
}
